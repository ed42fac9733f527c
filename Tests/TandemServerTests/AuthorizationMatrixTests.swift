import AsyncHTTPClient
import Foundation
import HTTPTypes
import NIOCore
import NIOHTTP1
import TandemClient
import TandemCompression
import TandemCore
import TandemProtocol
import TandemServer
import TandemStore
import TandemTestSupport
import Testing

/// The authorization matrix (issue 13): every caller against every kind of record, through
/// every endpoint, with the expected outcome of each cell in one table. Reads go through
/// `POST /v1/pull` (what a caller's subscriptions carry, field by field) and the live
/// endpoint's `hello` (which subscriptions it names); writes through `POST /v1/push` (an
/// edit of each record); the rest through `GET /v1/devices` and `POST /v1/link`. Guessing
/// another member's record id reveals nothing: an edit of it is answered as for a missing id.
@Suite("Authorization matrix")
struct AuthorizationMatrixTests {
    enum Caller: String, CaseIterable {
        case patient, otherPatient, mentorNoConsent, mentorMetrics, mentorJournal, unassignedMentor, supervisor, staff
        case revokedDevice, oldStaffToken, noToken
    }

    enum Kind: String, CaseIterable {
        case ownJournal, otherPatientsJournal, revokedConsentJournal, expiredConsentJournal, sharedNote, privateNote, consent
    }

    /// What a caller's pull carries of a record.
    enum Sees: Equatable { case nothing, metrics, everything }

    /// The table: what each caller sees of each kind of record. `ownJournal` is Sam's (the
    /// patient's); the notes are Mia's (mentorMetrics) about Sam; `consent` is Sam's consent
    /// to Mia. Kim's consent to Mia was revoked; Lee's expired. Noa supervises Mia.
    static let sees: [Caller: [Kind: Sees]] = [
        .patient: [.ownJournal: .everything, .sharedNote: .everything, .consent: .everything],
        .otherPatient: [.otherPatientsJournal: .everything],
        .mentorNoConsent: [:],
        .mentorMetrics: [.ownJournal: .metrics, .sharedNote: .everything, .privateNote: .everything],
        .mentorJournal: [.ownJournal: .everything],
        .unassignedMentor: [:],
        .supervisor: [.sharedNote: .everything, .privateNote: .everything],
        .staff: [:],
    ]

    /// Callers refused at every endpoint, and how.
    static let refused: [Caller: Int] = [.revokedDevice: 401, .oldStaffToken: 401, .noToken: 401]

    /// Whose directory names whom (by member name).
    static let directory: [Caller: Set<String>] = [
        .patient: ["Mia", "Jo", "Ray", "Noa"],
        .otherPatient: [],
        .mentorNoConsent: ["Sam"],
        .mentorMetrics: ["Sam", "Kim", "Lee", "Noa"],
        .mentorJournal: ["Sam"],
        .unassignedMentor: [],
        .supervisor: ["Mia"],
        .staff: [],
    ]

    /// The record of each kind, and whose it is.
    struct Fixture {
        let server: InProcessServer
        let dir: TemporaryDirectory
        var tokens: [Caller: String] = [:]
        var replicas: [Caller: ReplicaID] = [:]
        var records: [Kind: RecordID] = [:]
        var owner: [Kind: Caller] = [:]
    }

    static func fixture(_ storeKind: ServerStoreKind) async throws -> Fixture {
        let dir = try TemporaryDirectory("authorization-matrix")
        let storage = try await storeKind.create(in: dir)
        let start = SystemWallClock().nowMillis()
        let (_, firstStaffToken) = try await storage.initialize(staffName: "Admin", nowMillis: start)
        let clock = ManualWallClock(millis: start)
        let server = try await InProcessServer(storage: storage, wallClock: clock)
        var fixture = Fixture(server: server, dir: dir)
        let admin: any ServerAdministration = storage
        func device(_ caller: Caller?, _ name: String, _ role: Role) async throws -> ReplicaStore {
            let store = try await server.device(dir, name, role: role, member: name)
            if let caller {
                fixture.tokens[caller] = try #require(try store.binding()?.token)
                fixture.replicas[caller] = store.identity.replica
            }
            return store
        }
        let sam = try await device(.patient, "Sam", .patient)
        _ = try await device(.otherPatient, "Alex", .patient)
        let kim = try await device(nil, "Kim", .patient)
        let lee = try await device(nil, "Lee", .patient)
        let mia = try await device(.mentorMetrics, "Mia", .mentor)
        _ = try await device(.mentorJournal, "Jo", .mentor)
        _ = try await device(.mentorNoConsent, "Ray", .mentor)
        _ = try await device(.unassignedMentor, "Max", .mentor)
        _ = try await device(.supervisor, "Noa", .supervisor)
        _ = try await device(.staff, "Sol", .staff)
        let lost = try await server.device(dir, "Sam-lost", linkedTo: sam)
        fixture.tokens[.revokedDevice] = try #require(try lost.binding()?.token)
        try await admin.revokeDevice(try RecordID(hex: try #require(try await admin.devices(of: nil).first { $0.name == "Sam-lost" }).id))
        _ = try await admin.rotateStaffToken(member: nil, nowMillis: start)
        fixture.tokens[.oldStaffToken] = firstStaffToken

        for (mentor, patient) in [("Mia", "Sam"), ("Jo", "Sam"), ("Ray", "Sam"), ("Mia", "Kim"), ("Mia", "Lee")] {
            _ = try await admin.assign(.mentor, carer: try await admin.member(named: mentor), member: try await admin.member(named: patient), nowMillis: start)
        }
        _ = try await admin.assign(.supervisor, carer: try await admin.member(named: "Noa"), member: try await admin.member(named: "Mia"), nowMillis: start)
        func member(_ name: String) async throws -> MemberID { try await admin.member(named: name).id }

        func entry(on store: ReplicaStore, _ text: String) throws -> RecordID {
            var edit = JournalEdit()
            edit.mood = 5
            edit.craving = 4
            edit.addTags = ["tag of \(text)"]
            edit.text = text
            return try store.write(try edit.recordEdit(), to: nil, clock: SystemWallClock()).0
        }
        fixture.records[.ownJournal] = try entry(on: sam, "Sam's entry")
        fixture.owner[.ownJournal] = .patient
        fixture.records[.otherPatientsJournal] = try entry(on: try ReplicaStore.open(at: dir.path("Alex.sqlite")), "Alex's entry")
        fixture.owner[.otherPatientsJournal] = .otherPatient
        fixture.records[.revokedConsentJournal] = try entry(on: kim, "Kim's entry")
        fixture.records[.expiredConsentJournal] = try entry(on: lee, "Lee's entry")
        func grant(_ store: ReplicaStore, _ patient: String, to mentor: String, _ scope: ConsentScope, expires: Int64? = nil) async throws -> RecordID {
            let edit = ConsentEdit.grant(patient: try await member(patient), recipient: try await member(mentor), scope: scope, expiresMillis: expires, purpose: "care")
            return try store.write(edit, to: nil, clock: SystemWallClock()).0
        }
        fixture.records[.consent] = try await grant(sam, "Sam", to: "Mia", .metrics)
        fixture.owner[.consent] = .patient
        _ = try await grant(sam, "Sam", to: "Jo", .journal)
        let kimConsent = try await grant(kim, "Kim", to: "Mia", .journal)
        _ = try kim.write(ConsentEdit.revoke(atMillis: Int64(start)), to: kimConsent, clock: SystemWallClock())
        _ = try await grant(lee, "Lee", to: "Mia", .journal, expires: Int64(start + 60_000))
        func note(_ shared: Bool) throws -> RecordID {
            var edit = NoteEdit()
            edit.patient = try #require(try sam.binding()?.member)
            edit.text = shared ? "A shared note." : "A private note."
            edit.shared = shared
            return try mia.write(try edit.recordEdit(), to: nil, clock: SystemWallClock()).0
        }
        fixture.records[.sharedNote] = try note(true)
        fixture.records[.privateNote] = try note(false)
        fixture.owner[.sharedNote] = .mentorMetrics
        fixture.owner[.privateNote] = .mentorMetrics
        for store in [sam, kim, lee, mia, try ReplicaStore.open(at: dir.path("Alex.sqlite"))] { _ = try await Syncer(store: store).sync() }
        // Lee's consent expires (at the server's clock).
        clock.advance(byMillis: 120_000)
        return fixture
    }

    /// A pull from zero as `token`: its status, the fields each record arrived with, the
    /// subscription keys and the directory's names.
    static func pull(_ server: InProcessServer, token: String?) async throws -> (status: Int, fields: [RecordID: Set<String>], keys: [String], names: Set<String>) {
        var request = HTTPClientRequest(url: server.url + "/v1/pull")
        request.method = .POST
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        request.headers.add(name: WireProtocol.header, value: WireProtocol.version)
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: Array(try JSONEncoder().encode(PullRequest(cursors: [:], limit: 16_000)))))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 64 << 20)
        guard response.status == .ok else { return (Int(response.status.code), [:], [], []) }
        let answer = try JSONDecoder().decode(PullResponse.self, from: Data(body.readableBytesView))
        var fields: [RecordID: Set<String>] = [:]
        for page in answer.pages {
            let bytes = try Deflate.decompress(Array(try #require(Data(base64Encoded: page.changes))), limit: 64 << 20)
            for change in try ChangeBatch(decoding: bytes).changes { fields[change.record, default: []].insert(change.field.rawValue) }
        }
        return (200, fields, try #require(answer.subscriptions).map(\.key), Set((answer.directory ?? []).map(\.name)))
    }

    /// Pushes one edit of `record` (its mood, or a note's date) as `caller`: the status and
    /// the refusal's reason.
    /// The last time an edit of `pushEdit` was stamped with.
    static let lastStamp = Locked<UInt64>(0)

    static func pushEdit(_ server: InProcessServer, token: String?, replica: ReplicaID?, record: RecordID, kind: Kind) async throws -> (status: Int, reason: String?) {
        var writer = ChangeWriter(replica: replica ?? .random())
        var edit = RecordEdit(collection: kind == .sharedNote || kind == .privateNote ? .note : kind == .consent ? .consent : .journal)
        switch edit.collection {
        case .note: edit.set("date", .string("2026-11-30"))
        case .consent: edit.set("purpose", .string("changed"))
        default: edit.set("mood", .int(0))
        }
        // An edit as of a record the writer has seen created (it need not hold it).
        var state = ReplicaState()
        state.apply(Change(id: ChangeID(timestamp: HybridTimestamp(wallMillis: 1, counter: 0), replica: .random()), record: record, kind: .create,
                           value: .map([CreateKey.collection: .string(edit.collection.rawValue)])))
        // Stamped at the server's clock (a manual one, which the test does not move with the
        // real time: under ThreadSanitizer the test runs for minutes, and edits stamped at
        // the real time were refused as from the future), each edit after the last.
        let wallMillis = Self.lastStamp.withLock { last in
            last = max(last + 1, server.server.wallClock.nowMillis())
            return last
        }
        let changes = try writer.write(edit, to: record, current: state[record], wallMillis: wallMillis)
        var request = HTTPClientRequest(url: server.url + "/v1/push")
        request.method = .POST
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        request.headers.add(name: WireProtocol.header, value: WireProtocol.version)
        request.headers.add(name: "Content-Type", value: "application/octet-stream")
        request.body = .bytes(ByteBuffer(bytes: try Deflate.compress(ChangeBatch(changes).encoded())))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 1 << 20)
        let reason = (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any])
            .flatMap { ($0["refusals"] as? [[String: Any]])?.first?["reason"] as? String }
        return (Int(response.status.code), reason)
    }

    /// `GET /v1/devices` or `POST /v1/link` as `token`: the status and the body.
    static func call(_ server: InProcessServer, _ method: HTTPMethod, _ path: String, token: String?, body: String? = nil) async throws -> (status: Int, body: Data) {
        var request = HTTPClientRequest(url: server.url + path)
        request.method = method
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        request.headers.add(name: WireProtocol.header, value: WireProtocol.version)
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 1 << 20)
        return (Int(response.status.code), Data(body.readableBytesView))
    }

    static func sees(_ fields: Set<String>?) -> Sees {
        guard let fields else { return .nothing }
        return fields.contains("text") || fields.contains("date") || fields.contains("purpose") ? .everything : .metrics
    }

    @Test(arguments: ServerStoreKind.allCases)
    func everyCallerAgainstEveryRecord_throughEveryEndpoint(storeKind: ServerStoreKind) async throws {
        let fixture = try await Self.fixture(storeKind)
        defer { withExtendedLifetime(fixture.dir) {} }
        let server = fixture.server
        var cells = 0
        for caller in Caller.allCases {
            let token = fixture.tokens[caller]
            if let status = Self.refused[caller] {
                // The first refusal is the table's; a token refused again and again is then
                // throttled (429, §9.13), which refuses as firmly.
                func refusedAlike(_ got: Int) -> Bool { got == status || got == 429 }
                #expect(try await Self.pull(server, token: token).status == status, "\(caller) pull")
                for kind in Kind.allCases {
                    let record = try #require(fixture.records[kind])
                    #expect(refusedAlike(try await Self.pushEdit(server, token: token, replica: nil, record: record, kind: kind).status), "\(caller) push \(kind)")
                    cells += 1
                }
                let live = try await LivePushTests.upgrade(server.url, token: token)
                #expect(refusedAlike(live.status), "\(caller) live")
                #expect(refusedAlike(try await Self.call(server, .GET, "/v1/devices", token: token).status), "\(caller) devices")
                let link = try await Self.call(server, .POST, "/v1/link", token: token)
                #expect(refusedAlike(link.status), "\(caller) link: \(link.status) \(String(decoding: link.body, as: UTF8.self))")
                #expect(refusedAlike(try await Self.call(server, .GET, "/v1/audit?after=0", token: token).status), "\(caller) audit")
                #expect(refusedAlike(try await Self.call(server, .POST, "/v1/emergency/journal", token: token, body: #"{"patient":"Sam"}"#).status), "\(caller) emergency")
                continue
            }
            // Each caller lists their own member's devices only.
            let devices = try await Self.call(server, .GET, "/v1/devices", token: token)
            let listed = try JSONDecoder().decode(DevicesResponse.self, from: devices.body).devices
            #expect(devices.status == 200 && !listed.isEmpty && Set(listed.map(\.member)).count == 1, "\(caller) devices: \(listed)")
            let pulled = try await Self.pull(server, token: token)
            #expect(pulled.status == 200, "\(caller)")
            #expect(pulled.names == Self.directory[caller], "\(caller)'s directory: \(pulled.names)")
            // The live endpoint names the very subscriptions the pull lists.
            var headers = HTTPFields()
            headers[.authorization] = "Bearer \(try #require(token))"
            headers[HTTPField.Name(WireProtocol.header)!] = WireProtocol.version
            let (hello, _) = try await LivePushTests.connect(server.url, headers: headers, leaveAfterHello: true)
            #expect(hello?.type == "hello" && hello?.subscriptions == pulled.keys, "\(caller) live hello: \(String(describing: hello))")
            for kind in Kind.allCases {
                let record = try #require(fixture.records[kind])
                let expected = Self.sees[caller]?[kind] ?? .nothing
                #expect(Self.sees(pulled.fields[record]) == expected, "\(caller) reads \(kind): \(pulled.fields[record] ?? [])")
                if expected == .metrics { #expect(!(pulled.fields[record] ?? []).contains { $0 == "text" || $0.hasPrefix("tag.") }) }
                // Only a record's owner edits it; anyone else is answered as for a missing id.
                let pushed = try await Self.pushEdit(server, token: token, replica: fixture.replicas[caller], record: record, kind: kind)
                if fixture.owner[kind] == caller {
                    #expect(pushed.status == 200, "\(caller) edits their own \(kind): \(pushed)")
                } else {
                    let missing = try await Self.pushEdit(server, token: token, replica: fixture.replicas[caller], record: .random(), kind: kind)
                    #expect(pushed.status == missing.status && pushed.reason == missing.reason && pushed.status != 200,
                            "\(caller) edits \(kind): \(pushed) vs a missing id: \(missing)")
                }
                cells += 1
            }
        }
        // `GET /v1/audit` hands each caller their own chain only: after the reads above, the
        // entries of Sam's chain (Mia read his journal) and of Mia's (Noa read her notes, Sam
        // received her shared one) reach nobody else. Nobody holds an emergency access, so
        // every emergency read is refused (403) whoever asks, Sam about himself included.
        var entriesSeen = 0
        for caller in Caller.allCases where Self.refused[caller] == nil {
            let token = fixture.tokens[caller]
            let audit = try await Self.call(server, .GET, "/v1/audit?after=0", token: token)
            let entries = try JSONDecoder().decode(AuditResponse.self, from: audit.body).entries
            let own = Set(Kind.allCases.filter { fixture.owner[$0] == caller }.compactMap { fixture.records[$0]?.hex })
            let others = Set(fixture.records.values.map(\.hex)).subtracting(own)
            #expect(audit.status == 200, "\(caller) audit")
            for entry in entries { #expect(others.isDisjoint(with: entry.records), "\(caller)'s audit names another member's records: \(entry.records)") }
            entriesSeen += entries.count
            #expect(try await Self.call(server, .POST, "/v1/emergency/journal", token: token, body: #"{"patient":"Sam"}"#).status == 403, "\(caller) emergency read")
        }
        #expect(entriesSeen > 0, "the reads above were recorded, and their owners see them")
        #expect(cells == Caller.allCases.count * Kind.allCases.count, "every cell is exercised")
        // The table covers every reading caller.
        #expect(Set(Self.sees.keys).union(Self.refused.keys) == Set(Caller.allCases))
    }
}
