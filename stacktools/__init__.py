"""Tools around the Brand Club Pulumi program that run without the Pulumi CLI."""
