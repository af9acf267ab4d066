use super::*;

use std::time::Duration;

use mqttkit_codec::{Disconnect, Property, PropertyContext};

use crate::core::{CloseReason, ConnId};
use crate::testing::{Harness, props};

#[test]
fn will_on_abnormal_close_not_on_disconnect() {
    let mut h = Harness::quiet();
    watcher(&mut h, 9);
    h.connect_with(1, will_connect("w1", None, 0));
    h.core.connection_closed(ConnId(1), h.now);
    assert_eq!(h.publishes(9).len(), 1);
    h.connect_with(2, will_connect("w2", None, 0));
    h.send(2, &Packet::Disconnect(Disconnect::new(ReasonCode::SUCCESS)));
    assert!(h.publishes(9).is_empty());
    h.connect_with(3, will_connect("w3", None, 0));
    h.send(3, &Packet::Disconnect(Disconnect::new(ReasonCode::DISCONNECT_WITH_WILL_MESSAGE)));
    assert_eq!(h.publishes(9).len(), 1);
}

#[test]
fn will_on_keep_alive_timeout() {
    let mut h = Harness::quiet();
    h.connect_with(1, will_connect("w1", None, 0));
    watcher(&mut h, 9);
    h.advance(Duration::from_secs(16));
    assert_eq!(h.closed(1), Some(&CloseReason::KeepAliveTimeout));
    assert_eq!(h.publishes(9).len(), 1);
}

#[test]
fn will_delay_and_cancel_on_reconnect() {
    let mut h = Harness::quiet();
    watcher(&mut h, 9);
    let delay = props(&[Property::WillDelayInterval(5)]);
    let expiry = props(&[Property::SessionExpiryInterval(100)]);
    let mut c = will_connect("wd", Some(&delay), 0);
    c.properties = expiry.properties(PropertyContext::Connect).unwrap();
    h.connect_with(1, c.clone());
    h.core.connection_closed(ConnId(1), h.now);
    h.advance(Duration::from_secs(3));
    assert!(h.publishes(9).is_empty());
    // Reconnect within the delay: never published [MQTT-3.1.3-9].
    let mut again = c.clone();
    again.clean_start = false;
    again.will = None;
    h.connect_with(2, again);
    h.advance(Duration::from_secs(10));
    assert!(h.publishes(9).is_empty());
    // Now a delayed will that fires.
    h.core.connection_closed(ConnId(2), h.now);
    h.connect_with(3, c);
    h.core.connection_closed(ConnId(3), h.now);
    h.advance(Duration::from_secs(4));
    assert!(h.publishes(9).is_empty());
    h.advance(Duration::from_secs(2));
    assert_eq!(h.publishes(9).len(), 1);
}

#[test]
fn retained_will() {
    let mut h = Harness::quiet();
    let mut c = will_connect("wr", None, 0);
    if let Some(w) = &mut c.will {
        w.retain = true;
    }
    h.connect_with(1, c);
    h.core.connection_closed(ConnId(1), h.now);
    assert_eq!(h.core.retained_count(), 1);
}
