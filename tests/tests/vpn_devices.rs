//! Device enrollment, refresh and revocation on both store backends (no TUN needed): stable
//! addresses from the pool, derived preshared keys that change with the epoch, ownership
//! rules, the journal records, and the notices the endpoint follows.

// The scenario is shared by the two backend tests: its helpers fail the test the way an
// assertion does.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::Arc;
use std::time::Duration;

use sallyport_core::api::CreateUser;
use sallyport_core::model::{Role, UserName};
use sallyport_core::vpn::device::DeviceId;
use sallyport_gateway::control::{Actor, Control};
use sallyport_gateway::secrets::GatewaySecrets;
use sallyport_gateway::wireguard::{
    DeviceError, DeviceNotice, GatewayKey, VpnDevices, VpnEndpointInfo, WgPublicKey,
    MAX_DEVICES_PER_USER,
};
use sallyport_tests::backends::Backend;

fn key(b: u8) -> WgPublicKey {
    WgPublicKey::from_bytes([b; 32])
}

async fn user(control: &Control, name: &str, role: Role) -> UserName {
    let n: UserName = name.parse().unwrap();
    control
        .create_user(
            &Actor::system(),
            CreateUser {
                name: n.clone(),
                roles: vec![role],
                groups: vec![],
            },
        )
        .await
        .unwrap();
    n
}

fn service(control: &Arc<Control>) -> VpnDevices {
    let secrets = GatewaySecrets::generate().unwrap();
    VpnDevices::new(
        Arc::clone(control),
        Arc::new(GatewayKey::from_secrets(&secrets)),
        Some(VpnEndpointInfo {
            endpoint: "gw.example:51820".into(),
            pool: sallyport_gateway::wireguard::AddressPool::new("100.64.0.0/24".parse().unwrap())
                .unwrap(),
            psk_lifetime: Duration::from_secs(3600),
        }),
    )
}

async fn scenario(backend: Backend) {
    let control = backend.control().await.unwrap();
    let vpn = service(&control);
    let mut notices = vpn.subscribe();
    let alice = user(&control, "alice", Role::Engineer).await;
    let bob = user(&control, "bob", Role::Engineer).await;
    let actor = Actor::system();

    let a1 = vpn
        .enroll(&actor, &alice, "laptop".parse().unwrap(), key(1))
        .await
        .unwrap();
    let a2 = vpn
        .enroll(&actor, &alice, "phone".parse().unwrap(), key(2))
        .await
        .unwrap();
    assert_eq!(a1.device.address.to_string(), "100.64.0.2");
    assert_eq!(a2.device.address.to_string(), "100.64.0.3");
    assert_eq!(a1.endpoint, "gw.example:51820");
    assert_eq!(a1.gateway_public_key, vpn.key().public());
    assert_ne!(a1.psk.expose_secret(), a2.psk.expose_secret());
    assert_eq!(
        notices.recv().await.unwrap(),
        DeviceNotice::Upsert(a1.device.id)
    );

    // The same key twice is refused.
    let e = vpn
        .enroll(&actor, &bob, "x".parse().unwrap(), key(1))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("already exists"), "{e}");

    // Refresh: owner only, new epoch, new key.
    let r = vpn.refresh(&actor, &alice, &a1.device.id).await.unwrap();
    assert_eq!(r.device.psk_epoch, 2);
    assert_ne!(r.psk.expose_secret(), a1.psk.expose_secret());
    assert!(matches!(
        vpn.refresh(&actor, &bob, &a1.device.id).await,
        Err(DeviceError::NotOwner(_))
    ));

    // Revoke: not someone else's; addresses are not reused after it.
    assert!(matches!(
        vpn.revoke(&actor, Some(&bob), &a2.device.id).await,
        Err(DeviceError::NotOwner(_))
    ));
    let revoked = vpn
        .revoke(&actor, Some(&alice), &a2.device.id)
        .await
        .unwrap();
    assert!(revoked.revoked_at.is_some());
    assert!(matches!(
        vpn.refresh(&actor, &alice, &a2.device.id).await,
        Err(DeviceError::Revoked(_))
    ));
    let b1 = vpn
        .enroll(&actor, &bob, "laptop".parse().unwrap(), key(3))
        .await
        .unwrap();
    assert_eq!(b1.device.address.to_string(), "100.64.0.4");
    let unknown = DeviceId::random();
    assert!(vpn.revoke(&actor, None, &unknown).await.is_err());

    // Listing and the active set the endpoint loads.
    assert_eq!(vpn.list(Some(&alice)).await.unwrap().len(), 2);
    assert_eq!(vpn.list(None).await.unwrap().len(), 3);
    let active = control.store().active_devices().await.unwrap();
    assert_eq!(active.len(), 2);

    // A per-user limit.
    for i in 0..MAX_DEVICES_PER_USER {
        let r = vpn
            .enroll(&actor, &bob, "many".parse().unwrap(), key(10 + i as u8))
            .await;
        if i + 1 < MAX_DEVICES_PER_USER {
            r.unwrap();
        } else {
            assert!(matches!(r, Err(DeviceError::TooMany)));
        }
    }

    // Journaled: enroll, refresh, revoke, with the device and no secret.
    let page = control
        .store()
        .search_journal(&Default::default())
        .await
        .unwrap();
    let text = serde_json::to_string(&page).unwrap();
    assert!(text.contains("vpn.device.enroll"), "{text}");
    assert!(text.contains("vpn.device.refresh"), "{text}");
    assert!(text.contains("vpn.device.revoke"), "{text}");
    let psk_b64 = sallyport_gateway::wireguard::secret_base64(&r.psk);
    assert!(!text.contains(psk_b64.as_str()));
}

#[tokio::test]
async fn devices_on_sqlite() {
    scenario(Backend::sqlite().unwrap()).await;
}

#[tokio::test]
async fn devices_on_postgres() {
    scenario(Backend::postgres().unwrap()).await;
}
