/// Re-stamps a replica's unacknowledged changes after the server refused them for clock
/// skew (PROTOCOL.md §5.3).
///
/// ```swift
/// let restamp = try Restamper.restamp(outbox, replica: me, mark: refusal.mark,
///                                     clock: &clock, serverOffsetMillis: offset, wallMillis: now)
/// state = state.rewriting(replica: me, restamp.mapping)
/// ```
///
/// Changes at or below the server's mark keep their ids (replays, or ids the server never
/// accepted), unless at or after `reused`: the first change the server refused because it
/// accepted another change under that id (`id-reused`). Every other change gets a new
/// timestamp, in the outbox's order, strictly above the
/// mark, from the clock with its floor lowered to the mark and the server's offset applied.
/// References to the old ids in the outbox's contexts are rewritten; the caller rewrites
/// its stored state with `ReplicaState.rewriting(replica:_:)` in the same transaction.
///
/// A lowered id can lose an `lww` tie it used to win locally against a value the replica
/// then dropped; the caller re-reads its subscriptions after a re-stamp so the server's
/// winner comes back.
public enum Restamper {
    public struct Result: Sendable, Equatable {
        /// The outbox, in the same order, with new ids and rewritten contexts.
        public var changes: [Change]
        /// Old timestamp to new, for this replica's changes.
        public var mapping: [HybridTimestamp: HybridTimestamp]
    }

    /// - Throws: `TandemCoreError.invalidChange` when the outbox holds another replica's
    ///   change or is not in timestamp order; `.clockExhausted` past the clock's range.
    public static func restamp(
        _ outbox: [Change], replica: ReplicaID, mark: HybridTimestamp?, reused: HybridTimestamp? = nil,
        clock: inout HybridClock, serverOffsetMillis: Int64, wallMillis: UInt64
    ) throws(TandemCoreError) -> Result {
        var previous: HybridTimestamp? = nil
        for change in outbox {
            guard change.replica == replica else { throw .invalidChange(reason: "an outbox holds only its own replica's changes") }
            if let previous, change.timestamp <= previous { throw .invalidChange(reason: "an outbox must be in timestamp order") }
            previous = change.timestamp
        }
        clock.offsetMillis = serverOffsetMillis
        clock.lowerFloor(to: mark ?? .zero)
        var mapping: [HybridTimestamp: HybridTimestamp] = [:]
        var changes = outbox
        for index in changes.indices {
            let old = changes[index].timestamp
            if let mark, old <= mark, reused.map({ old < $0 }) ?? true { continue }
            let new = try clock.next(wallMillis: wallMillis)
            mapping[old] = new
            changes[index].id.timestamp = new
        }
        for index in changes.indices {
            changes[index].context = changes[index].context.rewriting(replica: replica, mapping)
        }
        return Result(changes: changes, mapping: mapping)
    }
}
