import Foundation
import GRDB
import TandemClient
import TandemCore
import TandemProtocol
import TandemServer
import TandemStore
import TandemTestSupport
import Testing

/// The accounting of disclosures (issue 14): every page that delivers a member's records
/// to someone else is recorded, in that member's hash chain, before it is sent; a
/// caught-up pull records nothing; an edited, removed or reordered entry breaks the chain.
@Suite("Accounting of disclosures")
struct AccountingTests {
    struct Center {
        let dir: TemporaryDirectory
        let server: InProcessServer
        let patient: ReplicaStore, mentor: ReplicaStore, supervisor: ReplicaStore
        let sam: MemberID, mia: MemberID, noa: MemberID

        /// Sam (patient) with Mia (mentor) assigned and Noa supervising Mia, on a server
        /// whose pull pages hold 3 changes, so that one sync reads many pages.
        init(_ storeKind: ServerStoreKind, _ prefix: String) async throws {
            var limits = SyncServer.Limits()
            limits.pullPageSize = 3
            limits.maxPullPageSize = 3
            (dir, server) = try await InProcessServer.center(prefix, store: storeKind, limits: limits)
            patient = try await server.device(dir, "patient", member: "Sam")
            mentor = try await server.device(dir, "mentor", role: .mentor, member: "Mia")
            supervisor = try await server.device(dir, "supervisor", role: .supervisor, member: "Noa")
            sam = try #require(try patient.binding()?.member)
            mia = try #require(try mentor.binding()?.member)
            noa = try #require(try supervisor.binding()?.member)
            let admin: any ServerAdministration = server.storage
            let now = SystemWallClock().nowMillis()
            _ = try await admin.assign(.mentor, carer: try await admin.member(named: "Mia"), member: try await admin.member(named: "Sam"), nowMillis: now)
            _ = try await admin.assign(.supervisor, carer: try await admin.member(named: "Noa"), member: try await admin.member(named: "Mia"), nowMillis: now)
        }

        func sync(_ stores: ReplicaStore...) async throws {
            for store in stores { _ = try await Syncer(store: store).sync() }
        }

        func deviceID(of member: MemberID) async throws -> String {
            try #require(try await server.storage.devices(of: member).first?.id)
        }
    }

    @Test(arguments: ServerStoreKind.allCases)
    func everyPageOfAnothersRecordsIsRecorded_andACaughtUpPullRecordsNothing(storeKind: ServerStoreKind) async throws {
        let center = try await Center(storeKind, "accounting")
        defer { withExtendedLifetime(center.dir) {} }
        let entries = try (0..<3).map { try center.patient.write(try moodEntry($0), to: nil, clock: SystemWallClock()).0 }
        try await center.sync(center.patient, center.mentor, center.supervisor)
        // The patient's own reads and an assignment without consent disclose nothing.
        #expect(try await center.server.storage.disclosures(of: nil).isEmpty)

        let consent = try center.patient.write(
            ConsentEdit.grant(patient: center.sam, recipient: center.mia, scope: .metrics, expiresMillis: nil, purpose: "peer support"),
            to: nil, clock: SystemWallClock()).0
        try await center.sync(center.patient, center.mentor)
        let disclosed = try await center.server.storage.disclosures(of: center.sam)
        // Three entries of a few changes each, three changes a page: several pages, each an entry.
        #expect(disclosed.count >= 3, "\(disclosed.count)")
        #expect(disclosed.map(\.sequence) == Array(1...Int64(disclosed.count)))
        #expect(Set(disclosed.flatMap(\.records)) == Set(entries), "the entries, and never the consent record itself")
        let mentorDevice = try await center.deviceID(of: center.mia)
        for entry in disclosed {
            #expect(entry.recipient == center.mia && entry.device?.hex == mentorDevice && entry.scope == "metrics" && entry.consent == consent)
            #expect(!entry.records.isEmpty && entry.records == entry.records.sorted())
        }
        #expect(try await center.server.storage.brokenChains(disclosed).isEmpty)
        #expect(Disclosure.firstBreak(in: Array(disclosed.dropFirst()))?.sequence == 2, "a chain starts at entry 1")

        // Caught up: nothing delivered, nothing recorded.
        try await center.sync(center.mentor, center.mentor)
        #expect(try await center.server.storage.disclosures(of: center.sam).count == disclosed.count)
        // A new entry: one more page, one more entry, at the chain's end.
        let fourth = try center.patient.write(try moodEntry(4), to: nil, clock: SystemWallClock()).0
        try await center.sync(center.patient, center.mentor)
        let after = try await center.server.storage.disclosures(of: center.sam)
        #expect(after.count > disclosed.count && Set(after.dropFirst(disclosed.count).flatMap(\.records)) == [fourth])
        #expect(after.last?.previous == after.dropLast().last?.hash)
        #expect(try await center.server.storage.brokenChains(after).isEmpty)
    }

    @Test(arguments: ServerStoreKind.allCases)
    func aSharedNoteIsTheMentorsDisclosure_andASupervisorsReadIsRecordedToo(storeKind: ServerStoreKind) async throws {
        let center = try await Center(storeKind, "accounting-notes")
        defer { withExtendedLifetime(center.dir) {} }
        var edit = NoteEdit()
        edit.patient = center.sam
        edit.text = "Proud of this week."
        edit.shared = true
        let note = try center.mentor.write(try edit.recordEdit(), to: nil, clock: SystemWallClock()).0
        try await center.sync(center.mentor, center.patient, center.supervisor)
        let disclosed = try await center.server.storage.disclosures(of: center.mia)
        let toPatient = disclosed.filter { $0.recipient == center.sam }
        let toSupervisor = disclosed.filter { $0.recipient == center.noa }
        #expect(!toPatient.isEmpty && toPatient.allSatisfy { $0.scope == "shared-note" && $0.consent == nil && $0.records == [note] })
        #expect(!toSupervisor.isEmpty && toSupervisor.allSatisfy { $0.records == [note] })
        #expect(disclosed.count == toPatient.count + toSupervisor.count)
        #expect(try await center.server.storage.disclosures(of: center.sam).isEmpty, "nothing of the patient's went anywhere")
    }

    /// An administrator who edits, removes or reorders entries in the store's file breaks
    /// the chain, and `tandem admin audit --verify` says where. (The store's file: SQLite.)
    @Test func anEditedOrRemovedEntry_breaksTheChain_andAuditVerifySaysWhere() async throws {
        let center = try await Center(.sqlite, "accounting-tamper")
        defer { withExtendedLifetime(center.dir) {} }
        for value in 0..<3 { _ = try center.patient.write(try moodEntry(value), to: nil, clock: SystemWallClock()) }
        _ = try center.patient.write(
            ConsentEdit.grant(patient: center.sam, recipient: center.mia, scope: .journal, expiresMillis: nil, purpose: nil),
            to: nil, clock: SystemWallClock())
        try await center.sync(center.patient, center.mentor)
        let db = try center.server.sqlite.path
        let count = try await center.server.storage.disclosures(of: center.sam).count
        #expect(count >= 3)
        func audit() async throws -> TandemExecutable.Result {
            try await TandemExecutable.run(["admin", "audit", "--patient", "Sam", "--verify", "--db", db])
        }
        let intact = try await audit()
        #expect(intact.status == 0 && intact.stderr.contains("The chain of Sam (patient) holds: \(count) entries."), "\(intact.combined)")
        #expect(intact.stdout.contains("Mia (mentor)") && intact.stdout.contains("journal"))
        let json = try await TandemExecutable.run(["admin", "audit", "--json", "--db", db])
        #expect(json.status == 0 && json.stdout.contains("\"recipientName\" : \"Mia\""), "\(json.combined)")

        // Who received entry 2 is rewritten: the chain breaks at entry 2.
        let queue = try DatabaseQueue(path: db)
        try await queue.write { db in
            try db.execute(sql: "UPDATE disclosure SET recipient = ? WHERE seq = 2", arguments: [Data(center.noa.bytes)])
        }
        var broken = try await audit()
        #expect(broken.status == 1 && broken.stderr.contains("broken at entry 2"), "\(broken.combined)")
        // Put back, then entry 2 removed: the chain breaks at entry 3, which no longer follows.
        try await queue.write { db in
            try db.execute(sql: "UPDATE disclosure SET recipient = ? WHERE seq = 2", arguments: [Data(center.mia.bytes)])
        }
        #expect(try await audit().status == 0)
        // The patient's device has received the chain and its head. The last entry cut:
        // the server's own check cannot tell, the patient's device can.
        let synced = try await Syncer(store: center.patient).sync()
        #expect(synced.disclosuresReceived == count && synced.accountingBrokenAt == nil)
        #expect(try await Syncer(store: center.patient).verifyAccounting().brokenAt == nil)
        try await queue.write { db in
            try db.execute(sql: "CREATE TABLE saved AS SELECT * FROM disclosure WHERE seq = ?; DELETE FROM disclosure WHERE seq = ?", arguments: [count, count])
        }
        #expect(try await audit().status == 0, "nothing on the server tells of a cut end")
        let check = try await Syncer(store: center.patient).verifyAccounting()
        #expect(check.brokenAt == Int64(count) && check.confirmed?.head.sequence == nil, "the device saw a head at entry \(count)")
        // Its next sync says so too: the head is now behind what it holds.
        let resynced = try await Syncer(store: center.patient).sync()
        #expect(resynced.accountingBrokenAt == Int64(count) && resynced.accountingFailed == nil)
        try await queue.write { db in try db.execute(sql: "INSERT INTO disclosure SELECT * FROM saved; DROP TABLE saved") }
        #expect(try await Syncer(store: center.patient).verifyAccounting().brokenAt == nil)
        try await queue.write { db in try db.execute(sql: "DELETE FROM disclosure WHERE seq = 2") }
        broken = try await audit()
        #expect(broken.status == 1 && broken.stderr.contains("broken at entry 3"), "\(broken.combined)")
        let removed = try await Syncer(store: center.patient).verifyAccounting()
        #expect(removed.brokenAt == 2 && removed.confirmed == nil)
        try queue.close()
    }
}
