import TandemCore
import TandemTestSupport
import TandemWorkload
import Testing

@Suite("Hybrid clock")
struct ClockTests {
    @Test func stamps_strictlyIncrease_whenTheWallClockJumpsBack() throws {
        var clock = HybridClock()
        var rng = SeededGenerator(seed: 5)
        var wall: UInt64 = 1_767_571_200_000
        var previous = HybridTimestamp.zero
        for _ in 0..<10_000 {
            // Mostly forward, sometimes far back (NTP corrections, a dead RTC battery).
            wall = rng.chance(0.1) ? wall - UInt64.random(in: 0...5_000_000, using: &rng) : wall + UInt64.random(in: 0...3, using: &rng)
            let stamp = try clock.next(wallMillis: wall)
            #expect(stamp > previous)
            previous = stamp
        }
    }

    @Test func stamps_stayAboveThePersistedFloor_afterARestart() throws {
        var before = HybridClock()
        let last = try before.next(wallMillis: 2_000_000)
        var after = HybridClock(floor: before.floor)
        #expect(try after.next(wallMillis: 1_000_000) > last)
    }

    @Test func counterOverflow_borrowsAMillisecond() throws {
        var clock = HybridClock(floor: HybridTimestamp(wallMillis: 500, counter: .max - 1))
        #expect(try clock.next(wallMillis: 10) == HybridTimestamp(wallMillis: 500, counter: .max))
        #expect(try clock.next(wallMillis: 10) == HybridTimestamp(wallMillis: 501, counter: 0))
        #expect(try clock.next(wallMillis: 10) == HybridTimestamp(wallMillis: 501, counter: 1))
    }

    @Test func clockAtTheEndOfItsRange_refusesClearly() throws {
        var clock = HybridClock(floor: HybridTimestamp(wallMillis: HybridTimestamp.maxWallMillis, counter: .max))
        #expect(throws: TandemCoreError.clockExhausted) { try clock.next(wallMillis: 0) }
    }

    @Test func stamps_useTheServerOffset() throws {
        var clock = HybridClock(offsetMillis: -30_000)
        #expect(try clock.next(wallMillis: 100_000) == HybridTimestamp(wallMillis: 70_000))
    }

    @Test func observe_ordersALocalEditAfterWhatItSaw() throws {
        var clock = HybridClock()
        clock.observe(HybridTimestamp(wallMillis: 9_000, counter: 4))
        #expect(try clock.next(wallMillis: 1_000) == HybridTimestamp(wallMillis: 9_000, counter: 5))
    }

    /// PROTOCOL.md §5.3: a device whose clock ran ahead re-stamps its unacknowledged
    /// changes above the server's mark, in order, and rewrites references to them.
    @Test func restamp_keepsOrder_staysAboveTheMark_andRewritesContexts() throws {
        let me: ReplicaID = try Notation.id("A")
        let other: ReplicaID = try Notation.id("B")
        var writer = ChangeWriter(replica: me)
        let future: UInt64 = 5_000_000  // an hour and more ahead of the server
        var state = ReplicaState()
        let record = RecordID.random()
        var outbox: [Change] = []
        var acknowledged: [Change] = []
        for (text, wall) in [("one", UInt64(1_000)), ("two", future), ("three", future)] {
            var edit = JournalEdit()
            edit.text = text
            edit.mood = text.count
            let changes = try writer.write(try edit.recordEdit(), to: record, current: state[record], wallMillis: wall)
            state.apply(changes)
            outbox += changes
            if wall == 1_000 { acknowledged = changes }
        }
        let remote = Change(
            id: ChangeID(timestamp: HybridTimestamp(wallMillis: 1_000), replica: other), record: record,
            field: "craving", kind: .lww, value: .int(2))
        state.apply(remote)

        let mark = acknowledged.last?.timestamp
        var clock = writer.clock
        let result = try Restamper.restamp(
            outbox, replica: me, mark: mark, clock: &clock, serverOffsetMillis: -4_000_000, wallMillis: future)

        #expect(Array(result.changes.prefix(acknowledged.count)) == acknowledged, "changes at or below the mark keep their ids")
        let restamped = result.changes.dropFirst(acknowledged.count)
        #expect(restamped.count == outbox.count - acknowledged.count)
        #expect(restamped.allSatisfy { $0.timestamp > mark! && $0.timestamp.wallMillis < future })
        #expect(zip(result.changes, result.changes.dropFirst()).allSatisfy { $0.timestamp < $1.timestamp }, "order kept")
        // Each text change's context names the previous text change by its new id.
        let texts = result.changes.filter { $0.kind == .mv }
        for (earlier, later) in zip(texts, texts.dropFirst()) {
            #expect(later.context.covers(earlier.id))
            #expect(later.context[me] == earlier.timestamp)
        }
        // The stored state, rewritten, equals applying the re-stamped changes afresh.
        var expected = ReplicaState()
        expected.apply(result.changes + [remote])
        #expect(state.rewriting(replica: me, result.mapping).canonicalDump() == expected.canonicalDump())
        #expect(clock.floor == result.changes.last?.timestamp)
    }

    @Test func restamp_refusesAnotherReplicasChange() throws {
        let change = Change(id: ChangeID(timestamp: .zero, replica: try Notation.id("B")), record: .random(), kind: .tombstone)
        var clock = HybridClock()
        #expect(throws: TandemCoreError.self) {
            try Restamper.restamp([change], replica: try Notation.id("A"), mark: nil, clock: &clock, serverOffsetMillis: 0, wallMillis: 0)
        }
    }
}
