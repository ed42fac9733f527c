/// The canonical dump of a replica's state (PROTOCOL.md §5.7): equal states, equal bytes.
extension ReplicaState {
    /// Records in id order; in each, the create, the tombstone and every field in
    /// `(name, kind)` order, each change as its canonical bytes, and for `mv` fields the
    /// covered context as well.
    public func canonicalDump() -> [UInt8] {
        var writer = ByteWriter(capacity: records.count * 128)
        writer.raw(Array("TNDS".utf8))
        writer.varint(1)
        writer.varint(records.count)
        for id in records.keys.sorted() {
            guard let record = records[id] else { continue }
            writer.identifier(id)
            writer.lengthPrefixed(record.create?.canonicalBytes ?? [])
            writer.lengthPrefixed(record.tombstone?.canonicalBytes ?? [])
            writer.varint(record.fields.count)
            for key in record.fields.keys.sorted() {
                writer.lengthPrefixed(key.field.rawValue.utf8)
                writer.byte(key.kind.rawValue)
                switch record.fields[key] {
                case .winner(let change)?:
                    writer.lengthPrefixed(change.canonicalBytes)
                case .multiValue(let register)?:
                    writer.varint(register.covered.entries.count)
                    for entry in register.covered.entries {
                        writer.identifier(entry.replica)
                        writer.varint(entry.timestamp.wallMillis)
                        writer.varint(UInt64(entry.timestamp.counter))
                    }
                    writer.varint(register.frontier.count)
                    for change in register.frontier { writer.lengthPrefixed(change.canonicalBytes) }
                case nil:
                    break
                }
            }
        }
        return writer.bytes
    }
}
