//! tidemark-replicator: global tables across regional nodes.
//!
//! It will tail the local change log, ship local-origin changes to peer regions, and apply
//! incoming remote changes through core's last-writer-wins path (the stamps every item and
//! change record already carry), so regions converge after partitions and restarts. Nothing is
//! implemented here yet: the stamps and origin regions it relies on are.
