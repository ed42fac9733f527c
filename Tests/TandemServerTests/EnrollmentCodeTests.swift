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

/// Enrollment and link codes name who issued them: revoking a device, a member or the
/// staff token voids what they minted; a member holds at most three unused link codes;
/// names cannot carry control characters (PROTOCOL.md §9.2, security-model.md).
@Suite("Enrollment codes")
struct EnrollmentCodeTests {
    struct Answer {
        var status: Int
        var error: ErrorResponse?
    }

    static func post(_ url: String, _ path: String, token: String? = nil, json: some Encodable) async throws -> Answer {
        var request = HTTPClientRequest(url: url + path)
        request.method = .POST
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        request.body = .bytes(ByteBuffer(bytes: Array(try JSONEncoder().encode(json))))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 1 << 20)
        return Answer(status: Int(response.status.code), error: try? JSONDecoder().decode(ErrorResponse.self, from: Data(body.readableBytesView)))
    }

    static func enroll(_ server: InProcessServer, code: String, name: String = "new device") async throws -> Answer {
        try await post(server.url, "/v1/enroll", json: EnrollRequest(code: code, replica: ReplicaID.random().hex, deviceName: name))
    }

    static func device(named name: String, of store: ReplicaStore, _ server: InProcessServer) async throws -> RecordID {
        let member = try #require(try store.binding()?.member)
        let device = try #require(try await server.storage.devices(of: member).first { $0.name == name })
        return try RecordID(hex: device.id)
    }

    @Test(arguments: ServerStoreKind.allCases)
    func revokingADevice_voidsTheLinkCodesItIssued_soNoDeviceEnrollsWithThem(storeKind: ServerStoreKind) async throws {
        let (dir, server) = try await InProcessServer.center("codes-revoke-device", store: storeKind)
        let phone = try await server.device(dir, "phone")
        let laptop = try await server.device(dir, "laptop", linkedTo: phone)
        let stolen = try await Syncer(store: laptop).link().code
        let fromPhone = try await Syncer(store: phone).link().code
        let listed = try await server.storage.pendingCodes(nowMillis: SystemWallClock().nowMillis())
        #expect(listed.count == 2)
        #expect(listed.contains { if case .device(_, "laptop") = $0.issuer { true } else { false } })

        try await server.storage.revokeDevice(try await Self.device(named: "laptop", of: phone, server))
        let refused = try await Self.enroll(server, code: stolen, name: "thief")
        #expect(refused.status == 403 && refused.error?.error == "invalid-code")
        let member = try #require(try phone.binding()?.member)
        #expect(try await server.storage.devices(of: member).contains { $0.name == "thief" } == false)
        // The phone's own code is untouched and still enrolls.
        await #expect(try server.storage.pendingCodes(nowMillis: SystemWallClock().nowMillis()).count == 1)
        #expect(try await Self.enroll(server, code: fromPhone, name: "tablet").status == 200)
    }

    @Test(arguments: ServerStoreKind.allCases)
    func aFourthUnusedLinkCode_isRefusedWith429_andUsingOneMakesRoom(storeKind: ServerStoreKind) async throws {
        let (dir, server) = try await InProcessServer.center("codes-cap", store: storeKind)
        let phone = try await server.device(dir, "phone")
        let token = try #require(try phone.binding()?.token)
        var codes: [String] = []
        for _ in 0..<3 {
            codes.append(try await Syncer(store: phone).link().code)
        }
        let fourth = try await Self.post(server.url, "/v1/link", token: token, json: [String: String]())
        #expect(fourth.status == 429 && fourth.error?.error == "too-many-codes")
        #expect(fourth.error?.message.contains("3 unused link codes") == true)
        await #expect(throws: SyncError.self) { _ = try await Syncer(store: phone).link() }
        #expect(try await Self.enroll(server, code: codes[0]).status == 200)
        #expect(try await Self.post(server.url, "/v1/link", token: token, json: [String: String]()).status == 200)
    }

    @Test(arguments: ServerStoreKind.allCases)
    func revokingAMember_revokesEveryDeviceTokenAndCode(storeKind: ServerStoreKind) async throws {
        let (dir, server) = try await InProcessServer.center("codes-revoke-member", store: storeKind)
        let phone = try await server.device(dir, "phone")
        let laptop = try await server.device(dir, "laptop", linkedTo: phone)
        let linked = try await Syncer(store: laptop).link().code
        let member = try #require(try phone.binding()?.member)
        let another = try await server.storage.invite(role: .patient, name: "Sam", member: member, nowMillis: SystemWallClock().nowMillis())
        let other = try await server.device(dir, "other member's phone")

        let revoked = try await server.storage.revokeMember(member)
        #expect(revoked == MemberRevocation(devices: 2, tokens: 2, codes: 2))
        for store in [phone, laptop] {
            await #expect(throws: SyncError.server(status: 401, code: "revoked", message: ServerError.revoked.description)) {
                try await Syncer(store: store).sync()
            }
        }
        for code in [linked, another] { #expect(try await Self.enroll(server, code: code).status == 403) }
        #expect(try await server.storage.devices(of: member).allSatisfy(\.revoked))
        _ = try other.write(try moodEntry(5), to: nil, clock: SystemWallClock())
        #expect(try await Syncer(store: other).sync().pushed > 0, "another member is not affected")
        await #expect(throws: ServerError.self) {
            _ = try await server.storage.revokeMember(.random())
        }
    }

    @Test(arguments: ServerStoreKind.allCases)
    func rotatingTheStaffToken_refusesTheOldOne_andVoidsItsCodes(storeKind: ServerStoreKind) async throws {
        let dir = try TemporaryDirectory("codes-staff")
        let storage = try await storeKind.create(in: dir)
        let now = SystemWallClock().nowMillis()
        let (staff, old) = try await storage.initialize(staffName: "Admin", nowMillis: now)
        let server = try await InProcessServer(storage: storage)
        let linked = try await Self.post(server.url, "/v1/link", token: old, json: [String: String]())
        #expect(linked.status == 200)
        await #expect(try storage.pendingCodes(nowMillis: now).map(\.issuer) == [.staffToken(member: staff)])

        let (rotated, new) = try await storage.rotateStaffToken(member: nil, nowMillis: now)
        #expect(rotated == staff && new != old)
        let refused = try await Self.post(server.url, "/v1/link", token: old, json: [String: String]())
        #expect(refused.status == 401 && refused.error?.error == "revoked")
        await #expect(try storage.pendingCodes(nowMillis: now).isEmpty, "the old token's code is void")
        #expect(try await Self.post(server.url, "/v1/link", token: new, json: [String: String]()).status == 200)
    }

    /// Wherever `tandem admin` asks for a MEMBER, an id or a unique name works; a name
    /// several members share is refused with their ids, not guessed.
    @Test(arguments: ServerStoreKind.allCases)
    func aMemberIsNamedByIdOrUniqueName_neverByAShared(storeKind: ServerStoreKind) async throws {
        let (dir, server) = try await InProcessServer.center("codes-member-names", store: storeKind)
        defer { withExtendedLifetime(dir) {} }
        let now = SystemWallClock().nowMillis()
        for name in ["Sam", "Alex", "alex"] {
            #expect(try await Self.enroll(server, code: try server.storage.invite(role: .patient, name: name, nowMillis: now)).status == 200)
        }
        let admin: any ServerAdministration = server.storage
        let members = try await admin.members()
        let sam = try #require(members.first { $0.name == "Sam" })
        #expect(try await admin.member(named: "sam") == sam)
        #expect(try await admin.member(named: sam.id.hex) == sam)
        await #expect(throws: ServerError.self) { try await admin.member(named: "Alex") }
        await #expect(throws: ServerError.self) { try await admin.member(named: "Mia") }
        let alexes = members.filter { $0.name.lowercased() == "alex" }
        #expect(alexes.count == 2)
        for alex in alexes { #expect(try await admin.member(named: alex.id.hex) == alex) }
    }

    @Test(arguments: ServerStoreKind.allCases)
    func aRevokedCode_enrollsNothing(storeKind: ServerStoreKind) async throws {
        let (dir, server) = try await InProcessServer.center("codes-revoke-one", store: storeKind)
        defer { withExtendedLifetime(dir) {} }
        let now = SystemWallClock().nowMillis()
        let code = try await server.storage.invite(role: .mentor, name: "Alex", nowMillis: now)
        let pending = try await #require(try server.storage.pendingCodes(nowMillis: now).first)
        #expect(pending.issuer == .administrator && pending.role == .mentor && pending.name == "Alex")
        try await server.storage.revokeCode(pending.id)
        #expect(try await Self.enroll(server, code: code).status == 403)
        await #expect(throws: ServerError.self) { try await server.storage.revokeCode(pending.id) }
    }

    @Test(arguments: ServerStoreKind.allCases, ["x\r\u{1B}[2K\u{1B}[1A\u{1B}[2K", "tab\there", "bell\u{07}", "del\u{7F}", "c1\u{9B}2K", "rtl\u{202E}olleh", ""])
    func namesWithControlCharacters_areRefused(storeKind: ServerStoreKind, _ name: String) async throws {
        let (dir, server) = try await InProcessServer.center("codes-names", store: storeKind)
        defer { withExtendedLifetime(dir) {} }
        let code = try await server.storage.invite(role: .patient, name: "Sam", nowMillis: SystemWallClock().nowMillis())
        let answer = try await Self.enroll(server, code: code, name: name)
        #expect(answer.status == 400)
        #expect(answer.error?.message.contains("deviceName") == true)
        await #expect(throws: ServerError.self) { _ = try await server.storage.invite(role: .patient, name: name, nowMillis: 0) }
        #expect(try await Self.enroll(server, code: code, name: "Sam's phone").status == 200, "the refused enrollments used nothing up")
    }
}
