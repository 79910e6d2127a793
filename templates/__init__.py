"""pimtrail.templates: filled in by later issues."""
