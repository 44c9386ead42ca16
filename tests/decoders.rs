//! Every decoder of bytes from disk or the network, fed arbitrary input: an error, never a
//! panic (the property a fuzzer would check, run on every `cargo test`).

use kdsled::interchange::flat::FlatNode;
use kdsled::replication::wire::{change_from_json, coords_from_json, id_from_json};
use kdsled::store::codec::{self, NodeFormat};
use kdsled::tree::node::{Inner, Node};
use proptest::prelude::*;

/// Arbitrary bytes, and bytes that start like real records (so decoders get past their first
/// checks).
fn bytes() -> impl Strategy<Value = Vec<u8>> {
    let legacy = codec::encode_legacy_node(
        NodeFormat::V2,
        &codec::LegacyNode {
            axis: 1,
            above: Some(3),
            below: None,
            coords: vec![2.5, 48.0],
        },
    );
    let inner = codec::encode_node(&Node::Inner(Inner {
        axis: 1,
        split: 2.5,
        below: Some(3),
        above: None,
        count: 9,
    }));
    let leaf = codec::encode_node(&Node::Leaf {
        coords: vec![2.5, 48.0, 3.0, 49.0],
    });
    let p = kdsled::Payload {
        id: kdsled::PointId::parse("x"),
        properties: vec![("k".into(), kdsled::Value::Str("v".into()))],
    };
    let payload = codec::encode_payload(&p);
    let group = codec::encode_leaf_payloads([&p, &p]);
    let bucket = codec::encode_id_bucket(&[(kdsled::PointId::Int(4), 7)]);
    let cut = |rec: Vec<u8>| {
        (0..rec.len(), any::<u8>()).prop_map(move |(cut, b)| {
            let mut v = rec.clone();
            v.truncate(cut);
            v.push(b);
            v
        })
    };
    let node = legacy.clone();
    prop_oneof![
        cut(legacy),
        cut(inner),
        cut(leaf),
        cut(bucket),
        (0..group.len(), any::<u8>()).prop_map(move |(at, b)| {
            let mut v = group.clone();
            v[at] ^= b;
            v
        }),
        proptest::collection::vec(any::<u8>(), 0..64),
        (0..node.len(), any::<u8>()).prop_map(move |(cut, b)| {
            let mut v = node.clone();
            v.truncate(cut);
            v.push(b);
            v
        }),
        (0..payload.len(), any::<u8>(), 0..payload.len()).prop_map(move |(at, b, cut)| {
            let mut v = payload.clone();
            v[at] ^= b;
            v.truncate(cut.max(1));
            v
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn record_decoders_never_panic(b in bytes(), dims in 0usize..20, id in any::<u64>()) {
        let _ = codec::decode_legacy_node(NodeFormat::V1, id, &b, dims);
        let _ = codec::decode_legacy_node(NodeFormat::V2, id, &b, dims);
        let _ = codec::decode_node(id, &b, dims);
        let _ = codec::decode_leaf_payloads(id, &b);
        let _ = codec::decode_id_bucket(id, &b);
        let _ = codec::payload_key_parts(&b);
        let _ = codec::bucket_from_key(&b);
        let _ = codec::decode_meta_v2(&b, 2);
        let _ = codec::decode_payload(id, &b);
        let _ = codec::decode_change(id, &b);
        let _ = codec::decode_meta(&b);
        let _ = codec::decode_version(&b);
        let _ = codec::node_id_from_key(&b);
        let _ = codec::id_from_key(&b);
    }

    #[test]
    fn wire_and_interchange_decoders_never_panic(text in ".{0,200}", b in bytes()) {
        let lossy = String::from_utf8_lossy(&b).into_owned();
        for t in [&text, &lossy] {
            let _ = FlatNode::parse(t, "fuzz");
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(t) {
                let _ = change_from_json(&v);
                let _ = id_from_json(&v);
                let _ = coords_from_json(Some(&v));
            }
        }
    }

    #[test]
    fn change_json_of_any_shape_never_panics(
        seq in proptest::option::of(any::<i64>()),
        op in "[a-z]{0,8}",
        coords in proptest::collection::vec(any::<f64>(), 0..4),
        id in prop_oneof![Just(serde_json::json!(null)), any::<i64>().prop_map(serde_json::Value::from), ".{0,10}".prop_map(serde_json::Value::from)],
    ) {
        let v = serde_json::json!({
            "seq": seq,
            "ops": [{"op": op, "id": id, "coords": coords, "properties": {"a": [1, {"b": null}]}}],
        });
        let _ = change_from_json(&v);
    }
}

/// The allocation bound is not tighter than real records: the densest encodings (many tiny
/// deletes, many empty attributes) still decode.
#[test]
fn dense_valid_records_are_within_the_allocation_bound() {
    use kdsled::index::{NewPoint, WriteOp};
    let deletes: Vec<WriteOp> = (0..20_000)
        .map(|_| WriteOp::Delete(kdsled::PointId::Int(0)))
        .collect();
    let b = codec::encode_change(&deletes);
    assert_eq!(codec::decode_change(1, &b).unwrap(), deletes);
    let empty: Vec<(String, kdsled::Value)> = (0..20_000)
        .map(|_| (String::new(), kdsled::Value::Null))
        .collect();
    let p = kdsled::Payload {
        id: kdsled::PointId::Int(1),
        properties: empty.clone(),
    };
    assert_eq!(
        codec::decode_payload(1, &codec::encode_payload(&p)).unwrap(),
        p
    );
    let ups: Vec<WriteOp> = (0..5_000)
        .map(|i| {
            WriteOp::Upsert(NewPoint {
                id: kdsled::PointId::Int(i),
                coords: vec![],
                properties: vec![(String::new(), kdsled::Value::Null)],
            })
        })
        .collect();
    let b = codec::encode_change(&ups);
    assert_eq!(codec::decode_change(1, &b).unwrap(), ups);
}
