import AsyncHTTPClient
import Foundation
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

/// A pull's pages: the server serves at most its maximum whatever a device asks, and a
/// device reading many pages (growing ones, as `tandem` asks) ends with the whole history.
@Suite("Pull paging", .serialized)
struct PullPagingTests {

    /// Pulls `own` from zero with `limit` and returns the page's changes and `more`.
    func rawPull(_ server: InProcessServer, token: String, limit: Int?) async throws -> (changes: [Change], more: Bool) {
        var request = HTTPClientRequest(url: server.url + "/v1/pull")
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        request.body = .bytes(ByteBuffer(bytes: try JSONEncoder().encode(PullRequest(cursors: [:], limit: limit))))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 16 << 20)
        #expect(response.status.code == 200)
        let answer = try JSONDecoder().decode(PullResponse.self, from: Data(body.readableBytesView))
        let page = try #require(answer.pages.first { $0.key == "own" })
        let packed = try #require(Data(base64Encoded: page.changes))
        return (try ChangeBatch(decoding: try Deflate.decompress(Array(packed), limit: 16 << 20)).changes, page.more)
    }

    /// Pulls `own` from zero as JSON and in the binary form; returns both bodies and types.
    func bothForms(_ server: InProcessServer, token: String) async throws -> (json: [UInt8], binary: [UInt8], binaryType: String?) {
        func pull(accept: String?) async throws -> ([UInt8], String?) {
            var request = HTTPClientRequest(url: server.url + "/v1/pull")
            request.method = .POST
            request.headers.add(name: "Authorization", value: "Bearer \(token)")
            if let accept { request.headers.add(name: "Accept", value: accept) }
            request.body = .bytes(ByteBuffer(bytes: try JSONEncoder().encode(PullRequest(cursors: [:], limit: 4))))
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
            #expect(response.status.code == 200)
            return (Array(try await response.body.collect(upTo: 16 << 20).readableBytesView), response.headers.first(name: "Content-Type"))
        }
        let (json, _) = try await pull(accept: nil)
        let (binary, type) = try await pull(accept: BinaryPull.mediaType)
        return (json, binary, type)
    }

    @Test(arguments: ServerStoreKind.allCases)
    func theBinaryAnswer_carriesWhatTheJSONAnswerCarries_andTruncationsAreRefused(storeKind: ServerStoreKind) async throws {
        let (dir, server) = try await InProcessServer.center("tandem-paging", store: storeKind)
        let phone = try await server.device(dir, "phone")
        for value in 0..<3 { try phone.write(try moodEntry(value), to: nil, clock: SystemWallClock()) }
        _ = try await Syncer(store: phone).sync()
        let forms = try await bothForms(server, token: try #require(try phone.binding()).token)

        #expect(forms.binaryType == BinaryPull.mediaType)
        let json = try JSONDecoder().decode(PullResponse.self, from: Data(forms.json))
        let (head, deflated) = try BinaryPull.decode(forms.binary)
        #expect(head.epoch == json.epoch && head.epochChanged == json.epochChanged && head.subscriptions == json.subscriptions)
        #expect(head.pages.map(\.key) == json.pages.map(\.key))
        #expect(head.pages.map(\.cursor) == json.pages.map(\.cursor))
        #expect(head.pages.map(\.more) == json.pages.map(\.more) && head.more)
        #expect(deflated.map { Data($0).base64EncodedString() } == json.pages.map(\.changes))
        #expect(try ChangeBatch(decoding: try Deflate.decompress(deflated[0], limit: 1 << 20)).changes.count == 4)
        #expect(forms.binary.count < forms.json.count)

        // Every cut of the body, and a byte too many, is refused rather than misread.
        for length in 0..<forms.binary.count {
            #expect(throws: BinaryPullError.malformed) { _ = try BinaryPull.decode(Array(forms.binary.prefix(length))) }
        }
        #expect(throws: BinaryPullError.malformed) { _ = try BinaryPull.decode(forms.binary + [0]) }
    }

    @Test(arguments: ServerStoreKind.allCases)
    func aLimitAboveTheServersMaximum_isServedAsTheMaximum(storeKind: ServerStoreKind) async throws {
        var limits = SyncServer.Limits()
        limits.pullPageSize = 2
        limits.maxPullPageSize = 5
        let (dir, server) = try await InProcessServer.center("tandem-paging", store: storeKind, limits: limits)
        let phone = try await server.device(dir, "phone")
        for value in 0..<4 { try phone.write(try moodEntry(value), to: nil, clock: SystemWallClock()) }
        _ = try await Syncer(store: phone).sync()
        let token = try #require(try phone.binding()).token

        let asked = try await rawPull(server, token: token, limit: 1_000)
        #expect(asked.changes.count == 5 && asked.more)
        let unnamed = try await rawPull(server, token: token, limit: nil)
        #expect(unnamed.changes.count == 2 && unnamed.more)
        let one = try await rawPull(server, token: token, limit: 1)
        #expect(one.changes.count == 1 && one.more)
    }

    /// A mentor's answer reads at most `limit` changes in all, not `limit` per patient: the
    /// patients past their cursor share it in order, one left without a share has an empty
    /// page with `more`, and a device that goes on pulling holds every patient's entries.
    @Test(arguments: ServerStoreKind.allCases)
    func aMentorsAnswer_readsAtMostItsLimit_inAllItsPages(storeKind: ServerStoreKind) async throws {
        var limits = SyncServer.Limits()
        limits.maxPullPageSize = 5
        let (dir, server) = try await InProcessServer.center("tandem-paging", store: storeKind, limits: limits)
        let mentor = try await server.device(dir, "mentor", role: .mentor, member: "Mia")
        let mia = try #require(try mentor.binding()?.member)
        let admin: any ServerAdministration = server.storage
        let mentorMember = try await admin.member(named: "Mia")
        var entries: [RecordID] = []
        var members: [MemberID] = []
        for name in ["Ann", "Ben", "Cal"] {
            let patient = try await server.device(dir, name, member: name)
            let member = try #require(try patient.binding()?.member)
            members.append(member)
            _ = try await admin.assign(.mentor, carer: mentorMember, member: try await admin.member(named: name), nowMillis: SystemWallClock().nowMillis())
            for value in 0..<3 { entries.append(try patient.write(try moodEntry(value), to: nil, clock: SystemWallClock()).0) }
            try patient.write(
                ConsentEdit.grant(patient: member, recipient: mia, scope: .metrics, expiresMillis: nil, purpose: nil), to: nil, clock: SystemWallClock())
            _ = try await Syncer(store: patient).sync()
        }

        var request = HTTPClientRequest(url: server.url + "/v1/pull")
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer \(try #require(try mentor.binding()).token)")
        request.body = .bytes(ByteBuffer(bytes: try JSONEncoder().encode(PullRequest(cursors: [:], limit: 4))))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        #expect(response.status.code == 200)
        let answer = try JSONDecoder().decode(PullResponse.self, from: Data(try await response.body.collect(upTo: 16 << 20).readableBytesView))
        let patients = answer.pages.filter { $0.key != "own" }
        #expect(patients.count == 3)
        var carried = 0
        for page in patients {
            let packed = try #require(Data(base64Encoded: page.changes))
            carried += try ChangeBatch(decoding: try Deflate.decompress(Array(packed), limit: 1 << 20)).changes.count
        }
        // Each patient's channel holds 3 entries of 3 changes and a consent: 4 of 10 are read.
        #expect(carried == 4, "the answer read \(carried) changes of 30 for a limit of 4")
        #expect(patients.allSatisfy { $0.more })
        let unmoved = try patients.filter { try Cursor(parsing: $0.cursor).sequence == 0 }
        #expect(unmoved.count == 2, "two patients had no share")

        let report = try await Syncer(store: mentor).sync()
        #expect(Set(try members.flatMap { try mentor.journal(patient: $0) }.map(\.id)) == Set(entries))
        #expect(report.pulled == 27, "the entries' changes; a metrics reader gets no consent")
    }

    /// An answer stops at the server's byte budget, with `more`, but always carries one
    /// change: long texts never make a page the device cannot read, and a change larger
    /// than the budget still arrives.
    @Test(arguments: ServerStoreKind.allCases)
    func anAnswerStopsAtItsByteBudget_butCarriesAtLeastOneChange(storeKind: ServerStoreKind) async throws {
        var limits = SyncServer.Limits()
        limits.maxPullAnswerBytes = 2_000
        let (dir, server) = try await InProcessServer.center("tandem-paging", store: storeKind, limits: limits)
        let phone = try await server.device(dir, "phone")
        var edit = JournalEdit()
        edit.text = String(repeating: "long night, ", count: 300)
        try phone.write(try edit.recordEdit(), to: nil, clock: SystemWallClock())
        for value in 0..<20 {
            var short = JournalEdit()
            short.mood = value % 10
            short.text = String(repeating: "ok ", count: 60)
            try phone.write(try short.recordEdit(), to: nil, clock: SystemWallClock())
        }
        _ = try await Syncer(store: phone).sync()
        let token = try #require(try phone.binding()).token

        // The first change past the budget alone (the 3,600-byte text is the second).
        let first = try await rawPull(server, token: token, limit: 1_000)
        #expect(first.more)
        #expect(first.changes.count >= 1 && first.changes.count < 10, "\(first.changes.count) changes in an answer of 2,000 bytes")
        #expect(first.changes.map(\.canonicalBytes.count).reduce(0, +) <= 2_000 + 4_000)

        let tablet = try await server.device(dir, "tablet", linkedTo: phone)
        let report = try await Syncer(store: tablet).sync()
        #expect(try tablet.state().heldChanges == (try phone.state().heldChanges))
        #expect(report.pulled == (try phone.state().heldChanges.count))
    }

    @Test(arguments: ServerStoreKind.allCases)
    func growingPages_bringTheWholeHistory(storeKind: ServerStoreKind) async throws {
        #expect((0..<8).map(Syncer.pageLimit) == [2_000, 4_000, 8_000, 16_000, 32_000, 64_000, 64_000, 64_000])
        #expect(Syncer.pageLimit(Int.max) <= SyncServer.Limits().maxPullPageSize)

        // A server with small pages: a new device reads many pages, in order, and holds what
        // the writer holds.
        var limits = SyncServer.Limits()
        limits.maxPullPageSize = 3
        let (dir, server) = try await InProcessServer.center("tandem-paging", store: storeKind, limits: limits)
        let phone = try await server.device(dir, "phone")
        var records: [RecordID] = []
        for value in 0..<6 { records.append(try phone.write(try moodEntry(value), to: nil, clock: SystemWallClock()).0) }
        try phone.write(try moodEntry(10), to: records[0], clock: SystemWallClock())
        _ = try await Syncer(store: phone).sync()

        let tablet = try await server.device(dir, "tablet", linkedTo: phone)
        let report = try await Syncer(store: tablet).sync()
        #expect(report.pulled == (try phone.state().heldChanges.count))
        #expect(try tablet.state().heldChanges == (try phone.state().heldChanges))
    }
}
