"""The rollout's decisions, made on the control node before a host changes: which models each host
serves, whether its inventory variables are right, and what a release is. The Ansible plugins in
ansible/plugins are thin adapters over this package."""
