"""Live collection through Microsoft Graph (msgraph-sdk, imported lazily)."""
