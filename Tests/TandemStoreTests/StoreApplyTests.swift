import Foundation
import TandemCore
import TandemStore
import TandemTestSupport
import TandemWorkload
import Testing

@Suite("Store apply")
struct StoreApplyTests {
    static let now = FixedWallClock(millis: 1_767_600_000_000)

    func newStore(_ dir: TemporaryDirectory, _ name: String = "replica.sqlite") throws -> ReplicaStore {
        try ReplicaStore.create(at: dir.path(name), name: "Sam", role: .patient, wallMillis: Self.now.millis)
    }

    /// The store's state equals the in-memory merge, whatever the order, batching or
    /// duplication of delivery; applying again changes nothing.
    @Test(arguments: [1, 2, 3])
    func apply_isIdempotentAndOrderIndependent_againstRealFiles(seed: UInt64) throws {
        let dir = try TemporaryDirectory()
        let workload = try Workload.generate(.init(patients: 3, days: 6, seed: seed))
        var expected = ReplicaState()
        expected.apply(workload.changes)

        let inOrder = try newStore(dir, "a.sqlite")
        for start in stride(from: 0, to: workload.changes.count, by: 50) {
            try inOrder.apply(Array(workload.changes[start..<min(start + 50, workload.changes.count)]))
        }
        var rng = SeededGenerator(seed: seed)
        let shuffled = try newStore(dir, "b.sqlite")
        let delivery = (workload.changes + workload.changes.prefix(workload.changes.count / 3)).shuffled(using: &rng)
        var start = 0
        while start < delivery.count {
            let size = Int.random(in: 1...80, using: &rng)
            try shuffled.apply(Array(delivery[start..<min(start + size, delivery.count)]))
            start += size
        }
        #expect(try inOrder.canonicalDump() == expected.canonicalDump())
        #expect(try shuffled.canonicalDump() == expected.canonicalDump())
        #expect(try inOrder.apply(workload.changes) == 0, "applying again changes nothing")
        // Each record's collection, as its merged state names it; none for an unknown id.
        let ids = Array(expected.records.keys) + [RecordID.random()]
        let collections = try inOrder.collections(of: ids)
        #expect(collections.count == expected.records.values.filter { $0.collection != nil }.count)
        for id in ids { #expect(collections[id] == expected[id]?.collection) }
        #expect(try inOrder.canonicalDump() == expected.canonicalDump())
        // The typed rows agree with the merged records.
        let entries = expected.records.values.compactMap(JournalEntry.init)
        #expect(try inOrder.journal().count == entries.count)
        #expect(try shuffled.journal().map(\.id) == inOrder.journal().map(\.id))
        #expect(try inOrder.conflicts().count == expected.records.values.filter { $0.register("text")?.isConflict == true }.count)
        #expect(try inOrder.integrityCheck() == ["ok"])
    }

    @Test func badBatch_isRefusedWhole_andChangesNothing() throws {
        let dir = try TemporaryDirectory()
        let store = try newStore(dir)
        let good = try Notation.changes("""
            1000.0@A create r - = {collection: "journal"}
            1001.0@A lww r mood = 3
            """)
        var bad = Change(id: ChangeID(timestamp: .zero, replica: try Notation.id("A")), record: try Notation.id("r"), kind: .tombstone)
        bad.value = .int(1)
        #expect(throws: StoreError.self) { try store.apply(good + [bad]) }
        #expect(try store.state().records.isEmpty)
    }

    @Test func localWrite_materializesTypedRows_andFillsTheOutbox() throws {
        let dir = try TemporaryDirectory()
        let store = try newStore(dir)
        var edit = JournalEdit()
        edit.at = try LocalDateTime(parsing: "2026-01-05T22:15:00+01:00")
        edit.mood = 2
        edit.craving = 9
        edit.addSymptoms = [.sweating, .anxiety]
        edit.text = "Hard evening."
        let (id, changes) = try store.write(try edit.recordEdit(), to: nil, clock: Self.now)
        let rows = try store.journal()
        #expect(rows.map(\.id) == [id])
        #expect(rows.first?.mood == 2 && rows.first?.craving == 9)
        #expect(rows.first?.symptoms == ["anxiety", "sweating"])
        #expect(try store.outbox() == changes)
        // The clock floor persisted: a reopened store stamps above every written change.
        let reopened = try ReplicaStore.open(at: store.path)
        #expect(try reopened.clock().floor == changes.last?.timestamp)
        var again = JournalEdit()
        again.mood = 3
        let (_, more) = try reopened.write(try again.recordEdit(), to: id, clock: FixedWallClock(millis: 0))
        #expect(more.allSatisfy { $0.timestamp > changes.last!.timestamp })
        #expect(try reopened.journal(since: LocalDate(parsing: "2026-01-05")).count == 1)
        #expect(try reopened.journal(since: LocalDate(parsing: "2026-01-06")).isEmpty)
    }

    @Test func storeFiles_areReadableByTheOwnerOnly() throws {
        let dir = try TemporaryDirectory()
        let store = try newStore(dir)
        var edit = JournalEdit()
        edit.mood = 5
        try store.write(try edit.recordEdit(), to: nil, clock: Self.now)
        for suffix in ["", "-wal", "-shm"] where FileManager.default.fileExists(atPath: store.path + suffix) {
            let mode = try FileManager.default.attributesOfItem(atPath: store.path + suffix)[.posixPermissions] as? Int
            #expect(mode == 0o600, "\(suffix)")
        }
    }

    @Test func conflicts_areListed_andResolvedByACoveringChange() throws {
        let dir = try TemporaryDirectory()
        let store = try newStore(dir)
        let changes = try Notation.changes("""
            1000.0@A create r - = {collection: "journal"}
            1001.0@A mv r text = "first" ctx{}
            2000.0@A mv r text = "phone" ctx{A=1001.0}
            2001.0@B mv r text = "laptop" ctx{A=1001.0}
            """)
        try store.apply(changes)
        let conflicts = try store.conflicts()
        #expect(conflicts.count == 1)
        #expect(conflicts.first?.values.map(\.text) == ["phone", "laptop"])
        var edit = JournalEdit()
        edit.text = "phone and laptop"
        try store.write(try edit.recordEdit(), to: try Notation.id("r"), clock: FixedWallClock(millis: 3000))
        #expect(try store.conflicts().isEmpty)
        #expect(try store.record(try Notation.id("r"))?.register("text")?.frontier.map(\.value) == [.string("phone and laptop")])
    }

    @Test func openingDamagedOrMissingStores_failsClearly() throws {
        let dir = try TemporaryDirectory()
        #expect(throws: StoreError.notFound(path: dir.path("none.sqlite"))) { try ReplicaStore.open(at: dir.path("none.sqlite")) }
        try Data(repeating: 0x42, count: 8192).write(to: dir.url.appendingPathComponent("junk.sqlite"))
        #expect(throws: StoreError.unreadable(path: dir.path("junk.sqlite"))) { try ReplicaStore.open(at: dir.path("junk.sqlite")) }
        _ = try newStore(dir)
        #expect(throws: StoreError.alreadyExists(path: dir.path("replica.sqlite"))) { try newStore(dir) }
    }
}
