import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import TandemClient
import TandemCore
import TandemProtocol
import TandemServer
import TandemStore
import TandemTestSupport
import Testing

/// Emergency access (42 CFR §2.51, issue 14): one named staff member reads one patient's
/// journal for a limited time through the server; each read is in the patient's accounting
/// before it is sent, the patient is told at their next sync, and nothing of it lands in a
/// store on the staff member's device. Anyone else, and the staff member after the access
/// ends, is refused and records nothing.
@Suite("Emergency access")
struct EmergencyAccessTests {
    static let planted = "PLANTED-emergency-text-41c9"

    struct Center {
        let dir: TemporaryDirectory
        let clock: ManualWallClock
        let server: InProcessServer
        let patient: ReplicaStore, staff: ReplicaStore, otherStaff: ReplicaStore, mentor: ReplicaStore
        let sam: Member, dana: Member, eli: Member
        let entry: RecordID

        init(_ storeKind: ServerStoreKind) async throws {
            dir = try TemporaryDirectory("emergency")
            clock = ManualWallClock(millis: SystemWallClock().nowMillis())
            server = try await InProcessServer(storage: try await storeKind.center(in: dir), wallClock: clock)
            patient = try await server.device(dir, "patient", member: "Sam")
            staff = try await server.device(dir, "staff", role: .staff, member: "Dana")
            otherStaff = try await server.device(dir, "other-staff", role: .staff, member: "Eli")
            mentor = try await server.device(dir, "mentor", role: .mentor, member: "Mia")
            let admin: any ServerAdministration = server.storage
            (sam, dana, eli) = (try await admin.member(named: "Sam"), try await admin.member(named: "Dana"), try await admin.member(named: "Eli"))
            var edit = JournalEdit()
            edit.mood = 2
            edit.craving = 9
            edit.addSymptoms = [.nausea]
            edit.text = EmergencyAccessTests.planted
            entry = try patient.write(try edit.recordEdit(), to: nil, clock: SystemWallClock()).0
            _ = try await Syncer(store: patient).sync()
        }

        func grant(hours: Int = 24) async throws -> EmergencyAccess {
            try await server.storage.grantEmergencyAccess(
                patient: sam, staff: dana, recipient: "Dr. Lee", facility: "City Hospital ED", reason: "Unresponsive, suspected overdose",
                hours: hours, grantedBy: "root on host", nowMillis: Int64(clock.nowMillis()))
        }

        func chain() async throws -> [Disclosure] { try await server.storage.disclosures(of: sam.id) }

        /// The status a read by `store` of `patient` gets (200 when it is answered).
        func readStatus(_ store: ReplicaStore, patient: String) async throws -> Int {
            do {
                _ = try await Syncer(store: store).emergencyRead(patient: patient)
                return 200
            } catch SyncError.server(let status, _, _) {
                return status
            }
        }
    }

    @Test(arguments: ServerStoreKind.allCases)
    func aStaffMembersRead_isRecordedBeforeItIsSent_andThePatientIsTold(storeKind: ServerStoreKind) async throws {
        let center = try await Center(storeKind)
        defer { withExtendedLifetime(center.dir) {} }
        // Before any access, staff read nothing.
        #expect(try await center.readStatus(center.staff, patient: "Sam") == 403)
        let access = try await center.grant()

        let read = try await Syncer(store: center.staff).emergencyRead(patient: "sam")
        #expect(read.patient == center.sam.id.hex && read.access == access.id.hex && read.disclosure == 1)
        #expect(read.entries.map(\.id) == [center.entry.hex])
        #expect(read.entries.first?.text == [Self.planted] && read.entries.first?.craving == 9 && read.entries.first?.symptoms == ["nausea"])
        // By id too; each read is its own entry, of scope `emergency`, naming the access.
        _ = try await Syncer(store: center.staff).emergencyRead(patient: center.sam.id.hex)
        let chain = try await center.chain()
        #expect(chain.count == 2)
        for entry in chain {
            #expect(entry.scope == DisclosureScope.emergency && entry.consent == access.id && entry.recipient == center.dana.id)
            #expect(entry.records == [center.entry])
        }
        #expect(Disclosure.firstBreak(in: chain) == nil)

        // The patient's next sync tells them, with what §2.51 asks.
        let report = try await Syncer(store: center.patient).sync()
        let told = try #require(report.emergencyReads)
        #expect(told.count == 2)
        #expect(told.first?.emergency?.facility == "City Hospital ED" && told.first?.emergency?.reason == "Unresponsive, suspected overdose")
        #expect(told.first?.emergency?.staffName == "Dana" && told.first?.emergency?.recipient == "Dr. Lee")
        // Told once: the next sync has nothing new.
        #expect(try await Syncer(store: center.patient).sync().emergencyReads == nil)

        // Nothing of the journal is in the staff member's store, after a sync of theirs too.
        _ = try await Syncer(store: center.staff).sync()
        let files = try FileManager.default.contentsOfDirectory(atPath: center.dir.url.path).filter { $0.hasPrefix("staff.sqlite") }
        #expect(!files.isEmpty)
        for file in files {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: center.dir.path(file)))
            #expect(bytes.range(of: Data(Self.planted.utf8)) == nil, "\(file) holds the patient's text")
        }
    }

    @Test(arguments: ServerStoreKind.allCases)
    func everyoneElse_andTheStaffMemberOnceTheAccessEnds_isRefused_andNothingIsRecorded(storeKind: ServerStoreKind) async throws {
        let center = try await Center(storeKind)
        defer { withExtendedLifetime(center.dir) {} }
        let access = try await center.grant(hours: 2)
        // Another staff member, a mentor, the patient themself, and a patient nobody may
        // read all get the same refusal as a member that does not exist.
        #expect(try await center.readStatus(center.otherStaff, patient: "Sam") == 403)
        #expect(try await center.readStatus(center.mentor, patient: "Sam") == 403)
        #expect(try await center.readStatus(center.patient, patient: "Sam") == 403)
        #expect(try await center.readStatus(center.staff, patient: "Mia") == 403)
        #expect(try await center.readStatus(center.staff, patient: "Nobody") == 403)
        #expect(try await center.readStatus(center.staff, patient: MemberID.random().hex) == 403)
        #expect(try await center.chain().isEmpty)
        // Dana's device-less staff token (the one `admin init` prints) does not read either:
        // emergency reads come from her own enrolled device.
        let (_, token) = try await center.server.storage.rotateStaffToken(member: center.dana.id, nowMillis: center.clock.nowMillis())
        var request = HTTPClientRequest(url: center.server.url + "/v1/emergency/journal")
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        request.body = .bytes(ByteBuffer(string: #"{"patient":"Sam"}"#))
        #expect(try await HTTPClient.shared.execute(request, timeout: .seconds(30)).status.code == 403)
        #expect(try await center.chain().isEmpty)

        // In force until its expiry, not a millisecond after.
        center.clock.advance(byMillis: 2 * 3_600_000 - 1)
        #expect(try await center.readStatus(center.staff, patient: "Sam") == 200)
        center.clock.advance(byMillis: 1)
        #expect(try await center.readStatus(center.staff, patient: "Sam") == 403)
        #expect(try await center.chain().count == 1)

        // Revoked: refused from then on.
        let second = try await center.grant()
        #expect(try await center.readStatus(center.staff, patient: "Sam") == 200)
        #expect(try await center.server.storage.endEmergencyAccess(second.id, nowMillis: Int64(center.clock.nowMillis())))
        #expect(try await center.server.storage.endEmergencyAccess(second.id, nowMillis: Int64(center.clock.nowMillis())) == false)
        #expect(try await center.server.storage.endEmergencyAccess(access.id, nowMillis: Int64(center.clock.nowMillis())) == false, "expired already")
        #expect(try await center.readStatus(center.staff, patient: "Sam") == 403)
        #expect(try await center.chain().count == 2)
        let listed = try await center.server.storage.emergencyAccesses()
        #expect(listed.map(\.id) == [access.id, second.id] && listed.last?.revokedMillis != nil)
    }

    @Test(arguments: ServerStoreKind.allCases)
    func grantingNeedsEveryFieldOfSection2_51_andTheRightRoles(storeKind: ServerStoreKind) async throws {
        let center = try await Center(storeKind)
        defer { withExtendedLifetime(center.dir) {} }
        let admin: any ServerAdministration = center.server.storage
        let mia = try await admin.member(named: "Mia")
        let now = Int64(center.clock.nowMillis())
        func grant(patient: Member, staff: Member, recipient: String = "Dr. Lee", facility: String = "ED", reason: String = "overdose", hours: Int = 24) async -> Bool {
            (try? await admin.grantEmergencyAccess(
                patient: patient, staff: staff, recipient: recipient, facility: facility, reason: reason, hours: hours, grantedBy: "root",
                nowMillis: now)) != nil
        }
        #expect(await grant(patient: center.sam, staff: mia) == false)
        #expect(await grant(patient: mia, staff: center.dana) == false)
        #expect(await grant(patient: center.sam, staff: center.dana, recipient: " ") == false)
        #expect(await grant(patient: center.sam, staff: center.dana, facility: "") == false)
        #expect(await grant(patient: center.sam, staff: center.dana, reason: "a\u{1B}[2Kb") == false)
        #expect(await grant(patient: center.sam, staff: center.dana, hours: 0) == false)
        #expect(await grant(patient: center.sam, staff: center.dana, hours: 73) == false)
        #expect(try await admin.emergencyAccesses().isEmpty)
        #expect(await grant(patient: center.sam, staff: center.dana, hours: 72))
    }
}
