import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import TandemClient
import TandemCore
import TandemProtocol
@testable import TandemServer
import TandemStore
import TandemTestSupport
import Testing

/// The center's statistics through the real server on loopback, on every store (issue 16,
/// PROTOCOL.md §9.19): only patients with an active `aggregate` consent are counted, a
/// revoke leaves them out of the next report, the answer names nobody, and only staff read it.
@Suite("Outcomes over HTTP")
struct OutcomesTests {
    struct Center {
        let dir: TemporaryDirectory
        let server: InProcessServer
        let clock: ManualWallClock
        let staffToken: String
        var patients: [(principal: Principal, name: String, writer: ChangeWriter, consent: RecordState?)] = []
        /// Today, as days since 1970, at the server's clock.
        let today: Int

        init(_ storeKind: ServerStoreKind) async throws {
            dir = try TemporaryDirectory("outcomes")
            let storage = try await storeKind.create(in: dir)
            let now = SystemWallClock().nowMillis()
            _ = try await storage.initialize(staffName: "Admin", nowMillis: now)
            clock = ManualWallClock(millis: now)
            today = Int(now / 86_400_000)
            server = try await InProcessServer(storage: storage, wallClock: clock)
            let staff = try await server.device(dir, "staff", role: .staff, member: "Sol")
            staffToken = try #require(try staff.binding()?.token)
        }

        /// The first day of the month two months before this one: a cohort whose month has
        /// ended long enough ago for its first weeks since enrollment to count (§9.19).
        var cohortStart: Int {
            let date = try! LocalDate(daysSince1970: today)
            let month = (date.year * 12 + date.month - 1) - 2
            return try! LocalDate(year: month / 12, month: month % 12 + 1, day: 1).daysSince1970
        }

        /// A patient enrolled on `day` (default: `cohortStart`), who wrote an entry every
        /// day since (a craving of `craving`, a tremor in the first week), and, if
        /// `consents`, counts.
        mutating func patient(_ index: Int, on day: Int? = nil, craving: Int, consents: Bool) async throws {
            let storage = server.storage
            let monday = day ?? cohortStart
            let name = "Patient-\(index)-NAME"
            // A member is added to the center when their first device enrolls.
            let enrolled = UInt64(monday) * 86_400_000 + 3_600_000
            let code = try await storage.invite(role: .patient, name: name, nowMillis: enrolled)
            let replica = ReplicaID.random()
            let token = "outcomes-\(index)-\(UUID().uuidString)"
            _ = try await storage.enroll(
                codeHash: Secrets.hashCode(code), replica: replica, deviceName: "phone", tokenHash: Secrets.hash(token), expectedRole: nil,
                expectedMember: nil, nowMillis: enrolled)
            let principal = try await storage.authenticate(tokenHash: Secrets.hash(token))
            var writer = ChangeWriter(replica: replica)
            var changes: [Change] = []
            for day in monday..<today {
                var edit = JournalEdit()
                edit.at = try LocalDateTime(date: LocalDate(daysSince1970: day), hour: 9, minute: 0, offsetMinutes: 60)
                edit.craving = craving
                edit.mood = 5
                edit.addSymptoms = day - monday < 7 ? [.tremor] : []
                edit.text = "PLANTED-outcome-text-\(index)"
                changes += try writer.write(try edit.recordEdit(), to: .random(), current: nil, wallMillis: clock.nowMillis())
            }
            var consent: RecordState?
            if consents {
                let id = RecordID.random()
                let grant = try writer.write(
                    ConsentEdit.grant(patient: principal.member, recipient: .center, scope: .aggregate, expiresMillis: nil, purpose: nil),
                    to: id, current: nil, wallMillis: clock.nowMillis())
                var state = ReplicaState()
                for change in grant { state.apply(change) }
                consent = state[id]
                changes += grant
            }
            _ = try await storage.push(changes, from: principal, repush: false, nowMillis: clock.nowMillis(), maxSkewMillis: 60_000)
            patients.append((principal, name, writer, consent))
        }

        func get(_ path: String, token: String?) async throws -> (status: Int, body: Data) {
            var request = HTTPClientRequest(url: server.url + path)
            if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
            return (Int(response.status.code), Data(try await response.body.collect(upTo: 16 << 20).readableBytesView))
        }

        func report(_ query: String = "") async throws -> (OutcomeReport, String) {
            let (status, body) = try await get("/v1/outcomes" + query, token: staffToken)
            #expect(status == 200, "\(String(decoding: body, as: UTF8.self))")
            return (try JSONDecoder().decode(OutcomeReport.self, from: body), String(decoding: body, as: UTF8.self))
        }
    }

    @Test(arguments: ServerStoreKind.allCases)
    func onlyConsentingPatientsAreCounted_andARevokeLeavesThemOut(storeKind: ServerStoreKind) async throws {
        var center = try await Center(storeKind)
        let server = center.server
        defer { Task { await server.stop() } }
        // Twelve consenting patients who enrolled on one day two months ago crave 4; a
        // thirteenth, who does not consent, craves 10 and must change no figure.
        for index in 0..<12 { try await center.patient(index, craving: 4, consents: true) }
        try await center.patient(12, craving: 10, consents: false)
        let (report, body) = try await center.report()
        let lastWeek = try #require(report.weeks.last)
        #expect(report.weeks.count == 12)
        #expect(lastWeek.week == Outcomes.dayText(Outcomes.monday(of: center.today) - 7))
        #expect(lastWeek.craving == OutcomeCell(suppressed: false, patients: 10, mean: 4, median: 4))
        #expect(lastWeek.adherence == OutcomeCell(suppressed: false, patients: 10, share: 1))
        #expect(lastWeek.contact == OutcomeCell(suppressed: false, patients: 10, perPatient: 0))
        // Before they enrolled: nobody, and that is no small cell.
        let before = try await center.report("?from=\(Outcomes.dayText(center.cohortStart - 30))&to=\(Outcomes.dayText(center.cohortStart - 8))")
        #expect(before.0.weeks.first?.adherence == OutcomeCell(suppressed: false, patients: 0))
        // Withdrawal fades: tremor in the first week since enrollment, not in the second.
        let tremor = report.sinceEnrollment.map { $0.withdrawal.first { $0.symptom == "tremor" }?.cell.share }
        #expect(tremor.prefix(2) == [1, 0])
        #expect(report.sinceEnrollment[1].retention == OutcomeCell(suppressed: false, patients: 10, share: 1))
        // A week not yet ended for their whole cohort: no one.
        #expect(report.sinceEnrollment[12].retention == OutcomeCell(suppressed: false, patients: 0))
        // No name, member id, record id or text of anyone.
        for patient in center.patients {
            #expect(!body.contains(patient.name) && !body.contains(patient.principal.member.hex))
        }
        #expect(!body.contains("PLANTED"))
        // One revoke: eleven left, still counted; a second: ten, and no figure shows them:
        // the weekly ones are suppressed, the cohort is too small to count since enrollment.
        for (revoking, expected) in [(0, false), (1, true)] {
            let consent = try #require(center.patients[revoking].consent)
            let revoke = try center.patients[revoking].writer.write(
                ConsentEdit.revoke(atMillis: Int64(center.clock.nowMillis())), to: consent.id, current: consent, wallMillis: center.clock.nowMillis())
            _ = try await center.server.storage.push(
                revoke, from: center.patients[revoking].principal, repush: false, nowMillis: center.clock.nowMillis(), maxSkewMillis: 60_000)
            let (after, _) = try await center.report()
            #expect(after.weeks.last?.craving.suppressed == expected)
            #expect(after.sinceEnrollment[0].retention == (expected ? OutcomeCell(suppressed: false, patients: 0)
                : OutcomeCell(suppressed: false, patients: 10, share: 1)))
        }
    }

    /// A mentor's caseload, by name (PROTOCOL.md §9.19): as it stood at each week's end, so
    /// moving a patient to another mentor today changes no week that has ended; the
    /// assignments' history is kept by the store.
    @Test(arguments: ServerStoreKind.allCases)
    func aMentorsCaseloadIsCountedAsItStoodAtEachWeeksEnd(storeKind: ServerStoreKind) async throws {
        var center = try await Center(storeKind)
        let server = center.server
        defer { Task { await server.stop() } }
        let storage = center.server.storage
        for index in 0..<24 { try await center.patient(index, craving: index < 12 ? 3 : 8, consents: true) }
        for name in ["Mia", "Max"] { _ = try await center.server.device(center.dir, name.lowercased(), role: .mentor, member: name) }
        let (mia, max) = (try await storage.member(named: "Mia"), try await storage.member(named: "Max"))
        let assigned = UInt64(center.cohortStart) * 86_400_000 + 7_200_000
        for (index, patient) in center.patients.enumerated() {
            _ = try await storage.assign(
                .mentor, carer: index < 12 ? mia : max, member: Member(id: patient.principal.member, name: patient.name, role: .patient),
                nowMillis: assigned)
        }
        let range = "from=\(Outcomes.dayText(center.cohortStart + 7))&to=\(Outcomes.dayText(center.today))"
        let (report, body) = try await center.report("?caseload=Mia&" + range)
        #expect(report.caseload == "Mia")
        #expect(report.sinceEnrollment.isEmpty)
        let lastWeek = try #require(report.weeks.last)
        #expect(lastWeek.craving == OutcomeCell(suppressed: false, patients: 10, mean: 3, median: 3))
        #expect(lastWeek.adherence == OutcomeCell(suppressed: false, patients: 10, share: 1))
        for patient in center.patients { #expect(!body.contains(patient.name) && !body.contains(patient.principal.member.hex)) }
        // By member id, the same.
        #expect(try await center.report("?caseload=\(mia.id.hex)&" + range).0 == report)

        // Today one of Mia's patients moves to Max.
        let moving = Member(id: center.patients[0].principal.member, name: center.patients[0].name, role: .patient)
        try await storage.unassign(.mentor, carer: mia, member: moving, nowMillis: center.clock.nowMillis())
        _ = try await storage.assign(.mentor, carer: max, member: moving, nowMillis: center.clock.nowMillis())
        #expect(try await center.report("?caseload=Mia&" + range).0 == report)
        let spans = try await storage.read { store in try store.caseloadSpans(of: [moving.id]) }.sorted { $0.since < $1.since }
        #expect(spans == [
            CaseloadSpan(mentor: mia.id, patient: moving.id, since: Int64(assigned), until: Int64(center.clock.nowMillis())),
            CaseloadSpan(mentor: max.id, patient: moving.id, since: Int64(center.clock.nowMillis()), until: nil),
        ])
        // Unassigned and assigned again within the same millisecond: still in Max's caseload.
        try await storage.unassign(.mentor, carer: max, member: moving, nowMillis: center.clock.nowMillis())
        _ = try await storage.assign(.mentor, carer: max, member: moving, nowMillis: center.clock.nowMillis())
        #expect(try await storage.read { store in try store.caseloadSpans(of: [moving.id]) }.sorted { $0.since < $1.since } == spans)
        for query in ["?caseload=Nobody", "?caseload=Mia&cohort=2026-01"] {
            #expect(try await center.get("/v1/outcomes" + query, token: center.staffToken).status == 400, "\(query)")
        }
    }

    @Test(arguments: ServerStoreKind.allCases)
    func onlyStaffReadTheStatistics_andBadQueriesAreRefused(storeKind: ServerStoreKind) async throws {
        let center = try await Center(storeKind)
        let server = center.server
        defer { Task { await server.stop() } }
        let patient = try await center.server.device(center.dir, "patient", member: "Sam")
        let mentor = try await center.server.device(center.dir, "mentor", role: .mentor, member: "Mia")
        for store in [patient, mentor] {
            #expect(try await center.get("/v1/outcomes", token: try store.binding()?.token).status == 403)
        }
        #expect(try await center.get("/v1/outcomes", token: nil).status == 401)
        #expect(try await center.get("/v1/outcomes", token: "not-a-token").status == 401)
        for query in ["?from=yesterday", "?cohort=2026-13", "?from=2026-02-01&to=2026-01-01", "?from=2000-01-03&to=2026-01-01"] {
            #expect(try await center.get("/v1/outcomes" + query, token: center.staffToken).status == 400, "\(query)")
        }
    }

    @Test(arguments: ServerStoreKind.allCases)
    func anAggregateConsentGoesToTheCenter_andOnlyThere(storeKind: ServerStoreKind) async throws {
        var center = try await Center(storeKind)
        let server = center.server
        defer { Task { await server.stop() } }
        try await center.patient(0, on: Outcomes.monday(of: center.today) - 7, craving: 3, consents: true)
        let principal = center.patients[0].principal
        var writer = center.patients[0].writer
        _ = try await center.server.device(center.dir, "mentor", role: .mentor, member: "Mia")
        let mia = try await center.server.storage.member(named: "Mia")
        // Mia is the patient's mentor, so only the aggregate rule can refuse her below.
        _ = try await center.server.storage.assign(
            .mentor, carer: mia, member: Member(id: principal.member, name: center.patients[0].name, role: .patient), nowMillis: center.clock.nowMillis())
        for (recipient, scope) in [(MemberID.center, ConsentScope.metrics), (mia.id, .aggregate), (MemberID.center, .journal)] {
            let changes = try writer.write(
                ConsentEdit.grant(patient: principal.member, recipient: recipient, scope: scope, expiresMillis: nil, purpose: nil),
                to: .random(), current: nil, wallMillis: center.clock.nowMillis())
            do {
                _ = try await center.server.storage.push(changes, from: principal, repush: false, nowMillis: center.clock.nowMillis(), maxSkewMillis: 60_000)
                Issue.record("a \(scope) consent to \(recipient == .center ? "the center" : "Mia") was taken")
            } catch let error as ServerError {
                #expect(error.refusals?.contains { $0.reason.contains("aggregate consent, and only it, is granted to the center") } == true, "\(error)")
            }
        }
        // Her metrics consent is taken: the rule refuses only what it should.
        let metrics = try writer.write(
            ConsentEdit.grant(patient: principal.member, recipient: mia.id, scope: .metrics, expiresMillis: nil, purpose: nil),
            to: .random(), current: nil, wallMillis: center.clock.nowMillis())
        _ = try await center.server.storage.push(metrics, from: principal, repush: false, nowMillis: center.clock.nowMillis(), maxSkewMillis: 60_000)
        // The counted consent reaches no device but the patient's: nobody has the center's id.
        let count = try await center.server.storage.read { store in try store.consents(to: .center).count }
        #expect(count == 1)
    }

    /// The numbers the statistics count follow each entry: an edit replaces them, a delete
    /// removes them from the store's index (docs/security-model.md, section 4).
    @Test(arguments: ServerStoreKind.allCases)
    func anEditedEntrysNumbersAreReplaced_andADeletedOnesLeaveTheIndex(storeKind: ServerStoreKind) async throws {
        let center = try await Center(storeKind)
        let server = center.server
        defer { Task { await server.stop() } }
        let phone = try await center.server.device(center.dir, "phone", member: "Sam")
        let sam = try #require(try phone.binding()?.member)
        let clock = SystemWallClock()
        var first = JournalEdit()
        first.mood = 2
        first.craving = 9
        let (kept, _) = try phone.write(try first.recordEdit(), to: nil, clock: clock)
        var second = JournalEdit()
        second.mood = 7
        second.craving = 1
        let (deleted, _) = try phone.write(try second.recordEdit(), to: nil, clock: clock)
        _ = try await Syncer(store: phone).sync()
        func counted() async throws -> [JournalMetrics] {
            try await center.server.storage.read { store in try store.countedEntries(of: [sam]) }.sorted { ($0.mood ?? 0) < ($1.mood ?? 0) }
        }
        #expect(try await counted().map(\.mood) == [2, 7])
        var edit = JournalEdit()
        edit.mood = 4
        _ = try phone.write(try edit.recordEdit(), to: kept, clock: clock)
        _ = try phone.write(RecordEdit.delete(.journal), to: deleted, clock: clock)
        _ = try await Syncer(store: phone).sync()
        let after = try await counted()
        #expect(after.map(\.mood) == [4])
        #expect(after.map(\.craving) == [9])
    }
}
