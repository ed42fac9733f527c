/// One change to one record: the unit that is stamped, merged, stored and sent.
///
/// ```swift
/// let change = Change(id: id, record: entry, field: "mood", kind: .lww, value: .int(6))
/// try change.validateShape()
/// ```
///
/// `create` and `tombstone` changes use `FieldName.record`; only `mv` changes carry a
/// context. `canonicalBytes` is the change's own encoding (PROTOCOL.md §3.4): hashes and
/// duplicate checks use it, never a batch's bytes.
public struct Change: Hashable, Sendable {
    public var id: ChangeID
    public var record: RecordID
    public var field: FieldName
    public var kind: MergeKind
    public var value: Value
    public var context: CausalContext

    public init(
        id: ChangeID, record: RecordID, field: FieldName = .record, kind: MergeKind,
        value: Value = .null, context: CausalContext = CausalContext()
    ) {
        self.id = id
        self.record = record
        self.field = field
        self.kind = kind
        self.value = value
        self.context = context
    }

    public var replica: ReplicaID { id.replica }
    public var timestamp: HybridTimestamp { id.timestamp }

    /// Checks the rules every change must keep whatever its collection (PROTOCOL.md §2.3).
    ///
    /// - Throws: `TandemCoreError.invalidChange` naming the broken rule.
    public func validateShape() throws(TandemCoreError) {
        if id.timestamp.wallMillis > HybridTimestamp.maxWallMillis {
            throw .invalidChange(reason: "its timestamp is beyond the clock's range")
        }
        if kind.hasField == field.isRecord {
            throw .invalidChange(reason: kind.hasField
                ? "a \(kind) change must name a field"
                : "a \(kind) change speaks for the whole record and names no field")
        }
        if kind != .mv && !context.isEmpty {
            throw .invalidChange(reason: "only mv changes carry a causal context")
        }
        if kind == .mv && context.covers(id) {
            throw .invalidChange(reason: "a change's context cannot cover the change itself")
        }
        if kind == .tombstone && value != .null {
            throw .invalidChange(reason: "a tombstone carries no value")
        }
        if kind == .create {
            guard let map = value.mapValue, case .string? = map[CreateKey.collection] else {
                throw .invalidChange(reason: "a create change's value is a map naming its collection")
            }
        }
        if context.entries.count > CausalContext.maxEntries {
            throw .limitExceeded(what: "entries in a causal context", limit: CausalContext.maxEntries)
        }
    }
}

/// Keys of a create change's map value (PROTOCOL.md §6).
public enum CreateKey {
    public static let collection = "collection"
}
