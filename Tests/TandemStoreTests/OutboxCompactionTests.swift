import Foundation
import TandemCore
import TandemStore
import TandemTestSupport
import Testing

/// What was never pushed and is already overwritten or deleted never leaves the device:
/// a write drops the outbox entries it supersedes (PROTOCOL.md §9.3a).
@Suite("Outbox compaction")
struct OutboxCompactionTests {
    let planted = "PLANTED-never-sent-4b1e"

    func entry(_ text: String, mood: Int) throws -> RecordEdit {
        var edit = JournalEdit()
        edit.mood = mood
        edit.text = text
        edit.addTags = ["\(text) tag"]
        return try edit.recordEdit()
    }

    func outboxText(_ store: ReplicaStore) throws -> String {
        try store.outbox().map { "\($0.value)" }.joined(separator: " ")
    }

    @Test func aRecordCreatedAndDeletedBeforeAnyPush_leavesOnlyItsCreateAndTombstone() throws {
        let dir = try TemporaryDirectory()
        let store = try ReplicaStore.create(at: dir.path("replica.sqlite"), name: "Sam", role: .patient, wallMillis: 1)
        let (id, written) = try store.write(try entry(planted, mood: 2), to: nil, clock: SystemWallClock())
        #expect(written.count > 3)
        var deletion = RecordEdit(collection: .journal)
        deletion.deletes = true
        try store.write(deletion, to: id, clock: SystemWallClock())
        let outbox = try store.outbox()
        #expect(outbox.map(\.kind) == [.create, .tombstone])
        #expect(!(try outboxText(store)).contains("PLANTED"))
    }

    @Test func supersededValues_leaveTheOutbox_theLatestStays() throws {
        let dir = try TemporaryDirectory()
        let store = try ReplicaStore.create(at: dir.path("replica.sqlite"), name: "Sam", role: .patient, wallMillis: 1)
        let (id, first) = try store.write(try entry(planted, mood: 2), to: nil, clock: SystemWallClock())
        var edit = JournalEdit()
        edit.mood = 5
        edit.text = "rewritten"
        try store.write(try edit.recordEdit(), to: id, clock: SystemWallClock())
        edit.mood = 7
        try store.write(try edit.recordEdit(), to: id, clock: SystemWallClock())
        let outbox = try store.outbox()
        let moods = outbox.filter { $0.field.rawValue == "mood" }
        #expect(moods.map(\.value) == [.int(7)], "one mood, the latest")
        #expect(outbox.filter { $0.kind == .mv }.map(\.value) == [.string("rewritten")])
        #expect(!outbox.contains { $0.value == .string(planted) }, "the first text is gone")
        // Fields the later writes did not touch stay, and so does the create.
        #expect(outbox.contains { $0.kind == .create })
        #expect(outbox.contains { $0.field.rawValue.hasPrefix("tag.") })
        #expect(outbox.count < first.count + 4)
        // The store's state is what every write made, compacted or not.
        let record = try #require(try store.record(id))
        #expect(record.value("mood") == .int(7))
    }
}
