//! What the control plane asks of peers, as a trait: the seam between its decisions and the
//! wire. The node's implementation is the HTTP [`PeerClient`]; the control plane's unit tests
//! put an in-memory network of replicators behind it.

use std::future::Future;
use std::pin::Pin;

use crate::antientropy::EntropyTransport;
use crate::client::{PeerClient, PeerError};
use crate::peers::Peer;
use crate::protocol::{
    CREATE_REPLICA_PATH, ChangeBatch, CreateReplicaMessage, MEMBERSHIP_PATH, MembershipAnswer,
    MembershipMessage,
};

/// A peer request under way.
pub(crate) type PeerRequest<'a, T> =
    Pin<Box<dyn Future<Output = Result<T, PeerError>> + Send + 'a>>;

/// Every request the control plane makes of a peer.
pub(crate) trait ControlTransport: std::fmt::Debug + Send + Sync {
    /// Asks `peer` to create its replica of a table (`POST /_tidemark/peer/replica`);
    /// idempotent at the peer.
    fn create_replica<'a>(
        &'a self,
        peer: &'a Peer,
        message: &'a CreateReplicaMessage,
    ) -> PeerRequest<'a, ()>;

    /// Sends `peer` a membership document (`POST /_tidemark/peer/membership`); it answers
    /// with the document it holds afterwards, or that it has no such table.
    fn send_membership<'a>(
        &'a self,
        peer: &'a Peer,
        message: &'a MembershipMessage,
    ) -> PeerRequest<'a, MembershipAnswer>;

    /// Sends `peer` one page of a seeding snapshot (`POST /_tidemark/peer/seed`).
    fn send_seed_page<'a>(&'a self, peer: &'a Peer, batch: &'a ChangeBatch) -> PeerRequest<'a, ()>;

    /// The same peers' comparison and repair requests, which a re-seed makes.
    fn entropy(&self) -> &dyn EntropyTransport;
}

impl ControlTransport for PeerClient {
    fn create_replica<'a>(
        &'a self,
        peer: &'a Peer,
        message: &'a CreateReplicaMessage,
    ) -> PeerRequest<'a, ()> {
        Box::pin(async move {
            self.post::<_, serde_json::Value>(peer, CREATE_REPLICA_PATH, message)
                .await
                .map(|_| ())
        })
    }

    fn send_membership<'a>(
        &'a self,
        peer: &'a Peer,
        message: &'a MembershipMessage,
    ) -> PeerRequest<'a, MembershipAnswer> {
        Box::pin(self.post(peer, MEMBERSHIP_PATH, message))
    }

    fn send_seed_page<'a>(&'a self, peer: &'a Peer, batch: &'a ChangeBatch) -> PeerRequest<'a, ()> {
        Box::pin(async move {
            self.post_cells(peer, crate::protocol::SEED_PATH, batch)
                .await
                .map(|_| ())
        })
    }

    fn entropy(&self) -> &dyn EntropyTransport {
        self
    }
}
