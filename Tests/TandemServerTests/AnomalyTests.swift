import AsyncHTTPClient
import Foundation
import Hummingbird
import NIOCore
import NIOHTTP1
import Synchronization
import TandemClient
import TandemCompression
import TandemCore
import TandemProtocol
import TandemServer
import TandemStore
import TandemTestSupport
import Testing

/// The anomalies published tests found in other sync products, each tried here against the
/// real server: dropped local writes on reconnect, not reading one's own writes after a
/// sync, reads going backwards, a batch applied twice, an upload queue stuck after a failure.
@Suite("Sync anomalies", .serialized)
struct AnomalyTests {
    /// Fails the first `count` pushes with a 503, as an overloaded proxy would.
    final class FailPushes: RouterMiddleware, Sendable {
        typealias Context = TandemRequestContext
        let remaining: Atomic<Int>
        init(_ count: Int) { remaining = Atomic(count) }

        func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
            guard request.uri.path == "/v1/push", remaining.subtract(1, ordering: .relaxed).oldValue > 0 else {
                return try await next(request, context)
            }
            return Response(status: .serviceUnavailable)
        }
    }

    @Test(arguments: ServerStoreKind.allCases)
    func localWritesMadeWhileOfflineOrDuringASync_areNeverDropped(storeKind: ServerStoreKind) async throws {
        let failures = FailPushes(Int.max)
        let (dir, server) = try await InProcessServer.center("tandem-anomaly", store: storeKind, middleware: [failures])
        let phone = try await server.device(dir, "phone")
        var written: [Change] = []
        for value in 0..<5 { written += try phone.write(try moodEntry(value), to: nil, clock: SystemWallClock()).1 }
        // Offline (every push fails): the sync fails and keeps everything.
        await #expect(throws: SyncError.self) { _ = try await Syncer(store: phone).sync() }
        #expect(try phone.outboxCount() == written.count)
        // Back online; a write lands while the sync's pushes are in flight.
        failures.remaining.store(0, ordering: .relaxed)
        let (late, lateChanges) = try await {
            let progressWrite = Locked<(RecordID, [Change])?>(nil)
            _ = try await Syncer(store: phone).sync(batchSize: 2) { progress in
                guard progress.sent > 0, progressWrite.withLock({ $0 == nil }) else { return }
                let result = try? phone.write(try! moodEntry(9), to: nil, clock: SystemWallClock())
                progressWrite.withLock { $0 = result }
            }
            return try #require(progressWrite.withLock { $0 })
        }()
        written += lateChanges
        _ = try await Syncer(store: phone).sync()
        #expect(try phone.outboxCount() == 0)
        let member = try #require(try phone.binding()?.member)
        var held = try await server.storage.state(of: member)
        #expect(written.allSatisfy { !held.apply($0) }, "every local write reached the server")
        #expect(held[late]?.create != nil)
    }

    @Test(arguments: ServerStoreKind.allCases)
    func aDeviceReadsItsOwnWrites_evenWhenItsOlderWritesComeBack(storeKind: ServerStoreKind) async throws {
        let (dir, server) = try await InProcessServer.center("tandem-anomaly", store: storeKind)
        let phone = try await server.device(dir, "phone")
        let (entry, _) = try phone.write(try moodEntry(5), to: nil, clock: SystemWallClock())
        // A newer write made after the push, before the pull brings the older one back.
        let wrote = Atomic(false)
        _ = try await Syncer(store: phone).sync { progress in
            guard progress.toSend > 0, progress.sent == progress.toSend, !wrote.exchange(true, ordering: .relaxed) else { return }
            _ = try? phone.write(try! moodEntry(7), to: entry, clock: SystemWallClock())
        }
        #expect(try phone.record(entry)?.value("mood") == .int(7))
        #expect(try phone.journal().first?.mood == 7)
        _ = try await Syncer(store: phone).sync()
        #expect(try phone.record(entry)?.value("mood") == .int(7))
        let laptop = try await server.device(dir, "laptop", linkedTo: phone)
        _ = try await Syncer(store: laptop).sync()
        #expect(try laptop.record(entry)?.value("mood") == .int(7))
    }

    @Test(arguments: ServerStoreKind.allCases)
    func readsNeverGoBackwards(storeKind: ServerStoreKind) async throws {
        let (dir, server) = try await InProcessServer.center("tandem-anomaly", store: storeKind)
        let writer = try await server.device(dir, "writer")
        let reader = try await server.device(dir, "reader", linkedTo: writer)
        let (entry, _) = try writer.write(try moodEntry(0), to: nil, clock: SystemWallClock())
        _ = try await Syncer(store: writer).sync()
        var seen: [Int] = []
        var sequences: [Int64] = []
        for value in 1...10 {
            try writer.write(try moodEntry(value), to: entry, clock: SystemWallClock())
            if value % 3 != 0 { _ = try await Syncer(store: writer).sync() }
            _ = try await Syncer(store: reader).sync()
            if case .int(let mood)? = try reader.record(entry)?.value("mood") { seen.append(Int(mood)) }
            let cursor = try #require(try reader.cursors()["own"])
            sequences.append(try #require(Int64(cursor.split(separator: ".").last ?? "")))
        }
        #expect(seen == seen.sorted(), "moods seen: \(seen)")
        #expect(sequences == sequences.sorted(), "cursor sequence: \(sequences)")
        #expect(seen.last == 10 || seen.last == 9)
    }

    @Test(arguments: ServerStoreKind.allCases)
    func theSameBatch_isNeverAppliedTwice(storeKind: ServerStoreKind) async throws {
        let (dir, server) = try await InProcessServer.center("tandem-anomaly", store: storeKind)
        let phone = try await server.device(dir, "phone")
        for value in 0..<4 { try phone.write(try moodEntry(value), to: nil, clock: SystemWallClock()) }
        let batch = try Deflate.compress(ChangeBatch(try phone.outboxEntries(limit: .max).map(\.change)).encoded())
        let token = try #require(try phone.binding()?.token)
        func push() async throws -> PushResponse {
            var request = HTTPClientRequest(url: server.url + "/v1/push")
            request.method = .POST
            request.headers.add(name: "Authorization", value: "Bearer \(token)")
            request.body = .bytes(ByteBuffer(bytes: batch))
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
            return try JSONDecoder().decode(PushResponse.self, from: Data(try await response.body.collect(upTo: 1 << 20).readableBytesView))
        }
        let first = try await push()
        let head = try await server.storage.head()
        let second = try await push()
        #expect(first.accepted > 0 && first.replayed == 0)
        #expect(second.accepted == 0 && second.replayed == first.accepted)
        #expect(try await server.storage.head() == head, "a replay hands out no sequence numbers")

        // On the device: the same pages applied twice change nothing.
        _ = try await Syncer(store: phone).sync()
        let dump = try phone.canonicalDump()
        let rows = try phone.journal().count
        try phone.resetCursors()
        _ = try await Syncer(store: phone).sync()
        #expect(try phone.canonicalDump() == dump)
        #expect(try phone.journal().count == rows)
    }

    @Test(arguments: ServerStoreKind.allCases)
    func theUploadQueue_isNeverStuckAfterAFailure(storeKind: ServerStoreKind) async throws {
        // Five failed pushes exhaust one sync's retries; the next sync drains the queue.
        let (dir, server) = try await InProcessServer.center("tandem-anomaly", store: storeKind, middleware: [FailPushes(5)])
        let phone = try await server.device(dir, "phone")
        for value in 0..<3 { try phone.write(try moodEntry(value), to: nil, clock: SystemWallClock()) }
        await #expect(throws: SyncError.self) { _ = try await Syncer(store: phone).sync() }
        let report = try await Syncer(store: phone).sync()
        #expect(report.waiting == 0 && report.pushed > 0)
        // (A permanent refusal is set aside and the rest goes on:
        // SyncRefusalTests.permanentlyRefusedCreate_isQuarantined_andTheRestSyncs.)
        let (mine, _) = try phone.write(try moodEntry(8), to: nil, clock: SystemWallClock())
        _ = try await Syncer(store: phone).sync()
        #expect(try phone.outboxCount() == 0)
        let member = try #require(try phone.binding()?.member)
        await #expect(try server.storage.state(of: member)[mine] != nil)
    }
}
