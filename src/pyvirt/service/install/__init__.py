"""virt-install and virt-clone use cases."""
