//! Routes this node let go of itself. Veilid reports a released imported route as dead, like
//! one whose peer went away; taken for news, that report made every remote pull again, whose
//! own release was reported in turn: with any remote, a pull of each every couple of seconds,
//! for ever. The reports of routes released here are dropped.

use std::collections::{HashSet, VecDeque};

use super::network::RouteId;

/// The releases remembered: Veilid reports one within a tick (about a second), so a bound far
/// above what a node releases in that time is never reached in practice, and memory stays
/// bounded whatever happens.
const REMEMBERED: usize = 4096;

/// Imported routes released here whose death Veilid has not reported yet.
#[derive(Default)]
pub(super) struct ReleasedRoutes {
    order: VecDeque<RouteId>,
    ids: HashSet<RouteId>,
}

impl ReleasedRoutes {
    /// `route` was released here.
    pub(super) fn insert(&mut self, route: RouteId) {
        if self.ids.insert(route.clone()) {
            self.order.push_back(route);
        }
        while self.order.len() > REMEMBERED {
            if let Some(oldest) = self.order.pop_front() {
                self.ids.remove(&oldest);
            }
        }
    }

    /// Leaves in `dead` only the routes that died without this node releasing them; the
    /// releases reported are forgotten.
    pub(super) fn drop_released(&mut self, dead: &mut Vec<RouteId>) {
        dead.retain(|route| !self.ids.remove(route));
        if self.order.len() != self.ids.len() {
            let ids = &self.ids;
            self.order.retain(|route| ids.contains(route));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(byte: u8) -> RouteId {
        RouteId(veilid_core::RouteId::new(
            veilid_core::CRYPTO_KIND_VLD0,
            veilid_core::BareRouteId::new(&[byte; 32]),
        ))
    }

    #[test]
    fn a_released_route_reported_dead_is_no_news_once() {
        let mut released = ReleasedRoutes::default();
        released.insert(route(1));
        let mut dead = vec![route(1), route(2)];
        released.drop_released(&mut dead);
        assert_eq!(dead, vec![route(2)]);
        // Imported again later and then dead for real: reported.
        let mut dead = vec![route(1)];
        released.drop_released(&mut dead);
        assert_eq!(dead, vec![route(1)]);
    }

    #[test]
    fn what_is_remembered_is_bounded() {
        let mut released = ReleasedRoutes::default();
        for i in 0..(REMEMBERED + 10) {
            let mut bytes = [0u8; 32];
            bytes[..8].copy_from_slice(&(i as u64).to_le_bytes());
            released.insert(RouteId(veilid_core::RouteId::new(
                veilid_core::CRYPTO_KIND_VLD0,
                veilid_core::BareRouteId::new(&bytes),
            )));
        }
        assert_eq!(released.order.len(), REMEMBERED);
        assert_eq!(released.ids.len(), REMEMBERED);
    }
}
