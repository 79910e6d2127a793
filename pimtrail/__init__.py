"""pimtrail: the memory and the proof for Microsoft Entra Privileged Identity Management."""

__version__ = "0.1.0"
