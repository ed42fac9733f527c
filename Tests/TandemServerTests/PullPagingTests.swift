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

    @Test(arguments: ServerStoreKind.allCases)
    func growingPages_bringTheWholeHistory(storeKind: ServerStoreKind) async throws {
        #expect((0..<8).map(Syncer.pageLimit) == [2_000, 4_000, 8_000, 16_000, 16_000, 16_000, 16_000, 16_000])
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
