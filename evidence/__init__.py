"""pimtrail.evidence: filled in by later issues."""
