"""What the platform runs, whatever a stack's configuration says: the service catalogue, the
MariaDB release series, and the drain of routed services. Standard library only: the policy
pack imports the catalogue alone."""
