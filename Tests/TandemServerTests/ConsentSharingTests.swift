import AsyncHTTPClient
import Foundation
import GRDB
import Hummingbird
import NIOCore
import NIOHTTP1
import TandemClient
import TandemCore
import TandemProtocol
import TandemServer
import TandemStore
import TandemTestSupport
import Testing

/// Sharing under the patient's consent (issue 13, PROTOCOL.md §7.1), with the shipped
/// `ConsentPolicy` and real devices against the real server on loopback: an assignment
/// alone shares nothing; a consent delivers the patient's history in its scope, field by
/// field; revocation, expiry (at the server's injected clock, and on the device offline)
/// and unassignment each purge the patient's data from the mentor's device.
@Suite("Consent sharing")
struct ConsentSharingTests {
    static let planted = "PLANTED-consent-text-7f3a"

    struct Center {
        let dir: TemporaryDirectory
        let server: InProcessServer
        let clock: ManualWallClock
        let patient: ReplicaStore, mentor: ReplicaStore, supervisor: ReplicaStore, otherMentor: ReplicaStore
        let sam: MemberID, mia: MemberID
        let entry: RecordID

        /// Sam (patient) wrote one entry with text and a tag; Mia mentors Sam, Noa
        /// supervises Mia, Max mentors nobody.
        init(
            _ storeKind: ServerStoreKind, limits: SyncServer.Limits = .init(),
            middleware: [any MiddlewareProtocol<Request, Response, TandemRequestContext>] = []
        ) async throws {
            dir = try TemporaryDirectory("consent-sharing")
            let storage = try await storeKind.create(in: dir)
            let now = SystemWallClock().nowMillis()
            _ = try await storage.initialize(staffName: "Admin", nowMillis: now)
            clock = ManualWallClock(millis: now)
            server = try await InProcessServer(storage: storage, limits: limits, middleware: middleware, wallClock: clock)
            patient = try await server.device(dir, "patient", member: "Sam")
            mentor = try await server.device(dir, "mentor", role: .mentor, member: "Mia")
            supervisor = try await server.device(dir, "supervisor", role: .supervisor, member: "Noa")
            otherMentor = try await server.device(dir, "other-mentor", role: .mentor, member: "Max")
            sam = try #require(try patient.binding()?.member)
            mia = try #require(try mentor.binding()?.member)
            let admin: any ServerAdministration = storage
            _ = try await admin.assign(.mentor, carer: try await admin.member(named: "Mia"), member: try await admin.member(named: "Sam"), nowMillis: now)
            _ = try await admin.assign(.supervisor, carer: try await admin.member(named: "Noa"), member: try await admin.member(named: "Mia"), nowMillis: now)
            var edit = JournalEdit()
            edit.mood = 3
            edit.craving = 7
            edit.addSymptoms = [.tremor]
            edit.addTags = ["night shift"]
            edit.text = ConsentSharingTests.planted
            entry = try patient.write(try edit.recordEdit(), to: nil, clock: SystemWallClock()).0
            _ = try await Syncer(store: patient).sync()
        }

        /// Grants `scope` to `recipient` (Mia unless told) and syncs; returns the consent's id.
        func grant(_ scope: ConsentScope, to recipient: MemberID? = nil, expiresMillis: Int64? = nil) async throws -> RecordID {
            let edit = ConsentEdit.grant(patient: sam, recipient: recipient ?? mia, scope: scope, expiresMillis: expiresMillis, purpose: "peer support")
            let id = try patient.write(edit, to: nil, clock: SystemWallClock()).0
            _ = try await Syncer(store: patient).sync()
            return id
        }

        func revoke(_ consent: RecordID) async throws {
            _ = try patient.write(ConsentEdit.revoke(atMillis: Int64(clock.nowMillis())), to: consent, clock: SystemWallClock())
            _ = try await Syncer(store: patient).sync()
        }

        /// What a device holds of Sam's entry after syncing: its field names (nil: nothing).
        func held(by store: ReplicaStore) async throws -> Set<String>? {
            _ = try await Syncer(store: store).sync()
            return try store.record(entry).map { Set($0.heldChanges.map(\.field.rawValue)) }
        }

        /// The field names a device holds of a record after syncing (nil: nothing).
        func fields(of record: RecordID, on store: ReplicaStore) async throws -> Set<String>? {
            _ = try await Syncer(store: store).sync()
            return try store.record(record).map { Set($0.heldChanges.map(\.field.rawValue)) }
        }

        /// Whether the server answers a pull of `store`'s member with these cursors as from
        /// another epoch: the one thing a crafted cursor could learn about a channel.
        func epochChanged(_ store: ReplicaStore, cursors: [String: String]) async throws -> Bool {
            var request = HTTPClientRequest(url: server.url + "/v1/pull")
            request.method = .POST
            request.headers.add(name: "Authorization", value: "Bearer \(try #require(try store.binding()?.token))")
            request.headers.add(name: WireProtocol.header, value: WireProtocol.version)
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: Array(try JSONEncoder().encode(PullRequest(cursors: cursors)))))
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
            let body = try await response.body.collect(upTo: 64 << 20)
            try #require(response.status == .ok)
            return try JSONDecoder().decode(PullResponse.self, from: Data(body.readableBytesView)).epochChanged
        }

        /// Whether the planted text is anywhere in a store's files (main file and WAL).
        func textOnDisk(of name: String, _ text: String = ConsentSharingTests.planted) throws -> Bool {
            let files = try FileManager.default.contentsOfDirectory(atPath: dir.url.path).filter { $0.hasPrefix(name + ".sqlite") }
            return try files.contains { file in
                let bytes = try Data(contentsOf: URL(fileURLWithPath: dir.path(file)))
                return bytes.range(of: Data(text.utf8)) != nil
            }
        }
    }

    @Test(arguments: ServerStoreKind.allCases)
    func aConsentDeliversItsScope_andRevokingPurges(storeKind: ServerStoreKind) async throws {
        let center = try await Center(storeKind)
        defer { withExtendedLifetime(center.dir) {} }
        // An assignment alone grants nothing.
        #expect(try await center.held(by: center.mentor) == nil)

        let metrics = try await center.grant(.metrics)
        let fields = try #require(try await center.held(by: center.mentor), "the history in scope arrives at the next sync")
        #expect(fields.contains("mood") && fields.contains("craving") && fields.contains("symptom.tremor"))
        #expect(!fields.contains("text") && !fields.contains { $0.hasPrefix("tag.") }, "metrics never carries text or tags: \(fields)")
        #expect(try !center.textOnDisk(of: "mentor"))
        // Nobody else receives anything: not the supervisor without a consent, not another mentor.
        #expect(try await center.held(by: center.supervisor) == nil)
        #expect(try await center.held(by: center.otherMentor) == nil)

        try await center.revoke(metrics)
        #expect(try await center.held(by: center.mentor) == nil, "revoking purges at the mentor's next pull")

        let journal = try await center.grant(.journal)
        let whole = try #require(try await center.held(by: center.mentor))
        #expect(whole.contains("text") && whole.contains { $0.hasPrefix("tag.") })
        #expect(try center.textOnDisk(of: "mentor"))
        try await center.revoke(journal)
        #expect(try await center.held(by: center.mentor) == nil)
        #expect(try !center.textOnDisk(of: "mentor"), "the purged text is gone from the mentor's files")
        // The patient's own devices keep everything, always.
        #expect(try center.patient.record(center.entry)?.heldChanges.contains { $0.field.rawValue == "text" } == true)

        // A revoke written by a device whose clock runs a day ahead is in force at once.
        let again = try await center.grant(.metrics)
        #expect(try await center.held(by: center.mentor) != nil)
        _ = try center.patient.write(ConsentEdit.revoke(atMillis: Int64(center.clock.nowMillis()) + 86_400_000), to: again, clock: SystemWallClock())
        _ = try await Syncer(store: center.patient).sync()
        #expect(try await center.held(by: center.mentor) == nil, "a revoke dated ahead is taken as of its arrival")
    }

    @Test(arguments: ServerStoreKind.allCases)
    func aConsentEndsAtItsExpiry_onTheServerAndOnTheDeviceOffline(storeKind: ServerStoreKind) async throws {
        let center = try await Center(storeKind)
        defer { withExtendedLifetime(center.dir) {} }
        let hour: UInt64 = 3_600_000
        _ = try await center.grant(.journal, expiresMillis: Int64(center.clock.nowMillis() + hour))
        #expect(try await center.held(by: center.mentor)?.contains("text") == true)
        // Offline, the device purges at the expiry itself (at the server's clock as it last learned it).
        #expect(try center.mentor.purgeExpired(localMillis: SystemWallClock().nowMillis()) == 0)
        #expect(try center.mentor.record(center.entry) != nil)
        #expect(try center.mentor.purgeExpired(localMillis: SystemWallClock().nowMillis() + hour + 1) >= 1)
        #expect(try center.mentor.record(center.entry) == nil)
        #expect(try !center.textOnDisk(of: "mentor"))

        // The server stops delivering at the expiry: after it, a sync brings nothing back.
        let fresh = try await center.server.device(center.dir, "mentor-2", linkedTo: center.mentor)
        #expect(try await center.held(by: fresh) != nil)
        center.clock.advance(byMillis: hour)
        #expect(try await center.held(by: fresh) == nil)
        #expect(try await center.held(by: center.mentor) == nil)
    }

    /// A pull as `store`'s device makes it, with its cursors and the digest of what it holds
    /// (or `digest`), answered in JSON.
    func pull(_ center: Center, as store: ReplicaStore, digest: String? = nil) async throws -> PullResponse {
        var request = HTTPClientRequest(url: center.server.url + "/v1/pull")
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer \(try #require(try store.binding()?.token))")
        request.headers.add(name: WireProtocol.header, value: WireProtocol.version)
        let held = SubscriptionDigest.of(try store.heldSubscriptions())
        let body = PullRequest(cursors: try store.cursors(), subscriptions: digest ?? held)
        request.body = .bytes(ByteBuffer(bytes: Array(try JSONEncoder().encode(body))))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let answer = try await response.body.collect(upTo: 64 << 20)
        try #require(response.status == .ok)
        return try JSONDecoder().decode(PullResponse.self, from: Data(answer.readableBytesView))
    }

    /// A device that holds the subscriptions the server grants gets a compact answer: no
    /// list, and no page for a subscription caught up at its cursor (PROTOCOL.md §9.4).
    /// Any difference in the list (a wrong digest, a revocation) brings the whole answer.
    @Test(arguments: ServerStoreKind.allCases)
    func aDeviceHoldingItsSubscriptions_getsACompactAnswer_untilTheyChange(storeKind: ServerStoreKind) async throws {
        let center = try await Center(storeKind)
        defer { withExtendedLifetime(center.dir) {} }
        let consent = try await center.grant(.metrics)
        #expect(try await center.held(by: center.mentor) != nil)
        let samKey = SubscriptionKey.key(channel: center.sam, projection: .metrics)
        #expect(Set(try center.mentor.heldSubscriptions().map(\.key)) == [SubscriptionKey.own, samKey])

        let caughtUp = try await pull(center, as: center.mentor)
        #expect(caughtUp.subscriptions == nil && caughtUp.pages.isEmpty && !caughtUp.epochChanged)

        // A new entry of Sam's: its page alone, with the changes.
        let second = try center.patient.write(try moodEntry(5), to: nil, clock: SystemWallClock()).0
        _ = try await Syncer(store: center.patient).sync()
        let oneNew = try await pull(center, as: center.mentor)
        #expect(oneNew.subscriptions == nil && oneNew.pages.map(\.key) == [samKey])
        // The device applies it and keeps what the answer left out.
        let report = try await Syncer(store: center.mentor).sync()
        #expect(report.pulled > 0 && report.purged == 0)
        #expect(try center.mentor.record(second) != nil && (try center.mentor.record(center.entry)) != nil)
        #expect(Set(try center.mentor.heldSubscriptions().map(\.key)) == [SubscriptionKey.own, samKey])

        // Another list than the server's: the whole answer, every subscription and page.
        let whole = try await pull(center, as: center.mentor, digest: String(repeating: "0", count: 32))
        #expect(whole.subscriptions?.map(\.key).sorted() == [samKey, SubscriptionKey.own].sorted())
        #expect(whole.pages.map(\.key).sorted() == [samKey, SubscriptionKey.own].sorted())

        // A revocation changes the list: the answer is whole again, and the device purges.
        try await center.revoke(consent)
        let revoked = try await pull(center, as: center.mentor)
        #expect(revoked.subscriptions?.map(\.key) == [SubscriptionKey.own])
        #expect(try await center.held(by: center.mentor) == nil)
        #expect(try center.mentor.record(second) == nil)
    }

    /// A compact answer in a pull of several pages: the next page is asked for with the
    /// cursors of the subscriptions it left out too, so none is read again from zero.
    @Test(arguments: ServerStoreKind.allCases)
    func aPagedPull_keepsTheCursorsACompactAnswerLeftOut(storeKind: ServerStoreKind) async throws {
        var limits = SyncServer.Limits()
        limits.maxPullPageSize = 2
        let center = try await Center(storeKind, limits: limits)
        defer { withExtendedLifetime(center.dir) {} }
        _ = try await center.grant(.metrics)
        var edit = NoteEdit()
        edit.patient = center.sam
        edit.text = "The mentor's own note."
        _ = try center.mentor.write(try edit.recordEdit(), to: nil, clock: SystemWallClock()).0
        _ = try await Syncer(store: center.mentor).sync()

        var entries: [RecordID] = []
        for value in 0..<4 { entries.append(try center.patient.write(try moodEntry(value), to: nil, clock: SystemWallClock()).0) }
        _ = try await Syncer(store: center.patient).sync()
        let report = try await Syncer(store: center.mentor).sync()
        // Exactly the new entries' current state arrives: nothing of the mentor's own channel again.
        let delivered = try entries.reduce(0) { sum, id in sum + (try #require(try center.mentor.record(id)).heldChanges.count) }
        #expect(delivered > 2 && report.pulled == delivered, "pulled \(report.pulled), the new entries hold \(delivered)")
    }

    /// Runs `hook` once, before the `after`-th pull it sees once armed.
    final class BeforePull: RouterMiddleware, Sendable {
        typealias Context = TandemRequestContext
        let state = Locked<(armed: Bool, seen: Int, hook: (@Sendable () async throws -> Void)?)>((false, 0, nil))
        let after: Int
        init(after: Int) { self.after = after }

        func arm(_ hook: @escaping @Sendable () async throws -> Void) { state.withLock { $0 = (true, 0, hook) } }

        func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
            if request.uri.path == "/v1/pull" {
                let hook = state.withLock { state -> (@Sendable () async throws -> Void)? in
                    guard state.armed else { return nil }
                    state.seen += 1
                    guard state.seen == after, let hook = state.hook else { return nil }
                    state.hook = nil
                    return hook
                }
                if let hook { try await hook() }
            }
            return try await next(request, context)
        }
    }

    /// A consent revoked between two pages of one pull, while the device applies the first
    /// (which brought the new subscription): the next request names the subscriptions held
    /// before that page, the server grants exactly those again, and its compact answer
    /// must still purge what the first page brought.
    @Test(arguments: ServerStoreKind.allCases)
    func aRevokeBetweenTwoPagesOfOnePull_stillPurges(storeKind: ServerStoreKind) async throws {
        var limits = SyncServer.Limits()
        limits.maxPullPageSize = 2
        let hook = BeforePull(after: 2)
        let center = try await Center(storeKind, limits: limits, middleware: [hook])
        defer { withExtendedLifetime(center.dir) {} }
        _ = try await Syncer(store: center.mentor).sync()
        for value in 0..<4 { _ = try center.patient.write(try moodEntry(value), to: nil, clock: SystemWallClock()) }
        _ = try await Syncer(store: center.patient).sync()
        let consent = try await center.grant(.metrics)
        // The mentor's first page brings Sam's subscription with more to come; before the
        // server reads the second request, Sam revokes.
        hook.arm { try await center.revoke(consent) }
        _ = try await Syncer(store: center.mentor).sync()
        #expect(try center.mentor.record(center.entry) == nil, "a revoked subscription's records are purged")
        #expect(try center.mentor.heldSubscriptions().map(\.key) == [SubscriptionKey.own])
    }

    @Test(arguments: ServerStoreKind.allCases)
    func unassigningAMentorEndsTheirConsents_andAConsentOutsideTheCareTeamIsRefused(storeKind: ServerStoreKind) async throws {
        let center = try await Center(storeKind)
        defer { withExtendedLifetime(center.dir) {} }
        _ = try await center.grant(.journal)
        #expect(try await center.held(by: center.mentor)?.contains("text") == true)
        #expect(try center.textOnDisk(of: "mentor"))
        var edit = NoteEdit()
        edit.patient = center.sam
        edit.text = "Before the unassignment."
        let note = try center.mentor.write(try edit.recordEdit(), to: nil, clock: SystemWallClock()).0
        _ = try await Syncer(store: center.mentor).sync()
        let admin: any ServerAdministration = center.server.storage
        _ = try await admin.unassign(.mentor, carer: try await admin.member(named: "Mia"), member: try await admin.member(named: "Sam"), nowMillis: 0)
        #expect(try await center.held(by: center.mentor) == nil, "an unassigned mentor's consents end")
        #expect(try !center.textOnDisk(of: "mentor"), "and the patient's text is gone from the mentor's files")
        // The mentor's past notes stay with them and with their supervisor.
        #expect(try center.mentor.record(note) != nil)
        #expect(try await center.fields(of: note, on: center.supervisor)?.contains("text") == true)

        // Max is in no care team of Sam's: the grant is refused for good, naming the rule.
        let max = try #require(try center.otherMentor.binding()?.member)
        let refused = try await center.grant(.metrics, to: max)
        let reasons = try center.patient.quarantined().filter { $0.change.record == refused }.map(\.reason)
        #expect(!reasons.isEmpty && reasons.allSatisfy { $0.contains("care team") }, "\(reasons)")
        #expect(try await center.held(by: center.otherMentor) == nil)
    }

    @Test(arguments: ServerStoreKind.allCases)
    func aNoteReachesItsPatientWhileShared_andItsAuthorsSupervisorAlways(storeKind: ServerStoreKind) async throws {
        let center = try await Center(storeKind)
        defer { withExtendedLifetime(center.dir) {} }
        let alex = try await center.server.device(center.dir, "alex", member: "Alex")
        func note(shared: Bool, text: String) throws -> RecordID {
            var edit = NoteEdit()
            edit.patient = center.sam
            edit.text = text
            edit.addFollowUps = ["call on Friday"]
            edit.shared = shared
            return try center.mentor.write(try edit.recordEdit(), to: nil, clock: SystemWallClock()).0
        }
        func share(_ note: RecordID, _ shared: Bool) async throws {
            var edit = NoteEdit()
            edit.shared = shared
            _ = try center.mentor.write(try edit.recordEdit(), to: note, clock: SystemWallClock())
            _ = try await Syncer(store: center.mentor).sync()
        }
        let noteText = "PLANTED-note-text-c2d8"
        let privateNote = try note(shared: false, text: noteText)
        let sharedNote = try note(shared: true, text: "Proud of this week.")
        _ = try await Syncer(store: center.mentor).sync()

        // The patient gets the shared note only, every field of it; the supervisor gets both.
        #expect(try await center.fields(of: privateNote, on: center.patient) == nil)
        let seen = try #require(try await center.fields(of: sharedNote, on: center.patient))
        #expect(seen.contains("text") && seen.contains("shared") && seen.contains { $0.hasPrefix("followup.") })
        // The one-note subscription's cursor counts that note's changes only: the mentor's
        // other writes do not move it, so it tells the patient nothing of them.
        // A crafted cursor learns nothing of it either: one past the note's last change is
        // past the subscription's head (another epoch), though the channel holds more.
        let noteKey = try #require(try center.patient.cursors().keys.first { $0.hasPrefix("r-") })
        let cursor = try Cursor(parsing: try #require(try center.patient.cursors()[noteKey]))
        _ = try note(shared: false, text: "Another private note.")
        _ = try await Syncer(store: center.mentor).sync()
        let probe = Cursor(epoch: cursor.epoch, key: noteKey, sequence: cursor.sequence + 1).encoded
        #expect(try await center.epochChanged(center.patient, cursors: [noteKey: probe]))
        #expect(try await !center.epochChanged(center.patient, cursors: [noteKey: cursor.encoded]))
        #expect(try await center.fields(of: privateNote, on: center.supervisor)?.contains("text") == true)
        #expect(try await center.fields(of: sharedNote, on: center.supervisor) != nil)
        // Nobody else: not another patient, not another mentor.
        for store in [alex, center.otherMentor] {
            #expect(try await center.fields(of: sharedNote, on: store) == nil)
            #expect(try await center.fields(of: privateNote, on: store) == nil)
        }

        // Sharing delivers; unsharing purges, text and all.
        try await share(privateNote, true)
        #expect(try await center.fields(of: privateNote, on: center.patient)?.contains("text") == true)
        #expect(try center.textOnDisk(of: "patient", noteText))
        try await share(privateNote, false)
        #expect(try await center.fields(of: privateNote, on: center.patient) == nil)
        #expect(try !center.textOnDisk(of: "patient", noteText), "the unshared note's text is gone from the patient's files")
        // Deleting a shared note purges it from the patient's devices.
        _ = try center.mentor.write(.delete(.note), to: sharedNote, clock: SystemWallClock())
        _ = try await Syncer(store: center.mentor).sync()
        #expect(try await center.fields(of: sharedNote, on: center.patient) == nil)
        // The author's own device keeps every note.
        #expect(try center.mentor.record(privateNote)?.heldChanges.contains { $0.field.rawValue == "text" } == true)
    }

    /// The SQLite store's own migrations (v10, v11): so on that store only.
    @Test func theIndexesAreFilledFromWhatAStoreHeldBeforeThem() async throws {
        let center = try await Center(.sqlite)
        defer { withExtendedLifetime(center.dir) {} }
        _ = try await center.grant(.metrics)
        var edit = NoteEdit()
        edit.patient = center.sam
        edit.text = "Shared before the index."
        edit.shared = true
        _ = try center.mentor.write(try edit.recordEdit(), to: nil, clock: SystemWallClock())
        _ = try await Syncer(store: center.mentor).sync()
        // The store as a version before the indexes left it: no tables, migrations not run.
        let path = center.dir.path("center.sqlite")
        let queue = try DatabaseQueue(path: path)
        try await queue.write { db in
            try db.execute(sql: """
                DROP TABLE consent; DROP TABLE note;
                DELETE FROM grdb_migrations WHERE identifier IN ('v10-consent-index', 'v11-note-index')
                """)
        }
        try queue.close()
        let reopened = try SQLiteServerStorage(path: path)
        let (sam, mia) = (center.sam, center.mia)
        let consents = try await reopened.read { try $0.consents(to: mia) }
        let notes = try await reopened.read { try $0.notesShared(with: sam) }
        #expect(consents.map(\.patient) == [sam] && consents.first?.scope == .metrics)
        #expect(notes.map(\.author) == [mia])
    }
}
