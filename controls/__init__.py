"""pimtrail.controls: filled in by later issues."""
