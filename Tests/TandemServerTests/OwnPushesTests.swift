import Foundation
import HTTPTypes
import HummingbirdWSClient
import Logging
@testable import TandemClient
import TandemCore
import TandemProtocol
import TandemServer
import TandemStore
import TandemTestSupport
import Testing

/// A device does not pull back what it pushed: the push's answer moves its cursor over its
/// own changes when nothing else came in between, and a live notice about its own push
/// carries the cursor it already has. Anything another device wrote still comes.
@Suite("Own pushes", .serialized)
struct OwnPushesTests {
    @Test(arguments: ServerStoreKind.allCases)
    func aDevicesOwnPushes_doNotComeBack_butOthersWritesDo(storeKind: ServerStoreKind) async throws {
        let (dir, server) = try await InProcessServer.center("tandem-own", store: storeKind)
        let phone = try await server.device(dir, "phone")
        _ = try await Syncer(store: phone).sync()

        for value in 0..<3 { try phone.write(try moodEntry(value), to: nil, clock: SystemWallClock()) }
        let pushed = try await Syncer(store: phone).sync()
        #expect(pushed.pushed > 0)
        #expect(pushed.pulled == 0, "its own changes did not come back")

        // Its cursor is where a device reading everything ends.
        let tablet = try await server.device(dir, "tablet", linkedTo: phone)
        let read = try await Syncer(store: tablet).sync()
        #expect(read.pulled == pushed.pushed)
        #expect(try tablet.cursors() == (try phone.cursors()))

        // The tablet writes; then the phone writes before it pulled that: its cursor is
        // behind, so nothing moves it, and its pull brings the tablet's write (and its own).
        let (fromTablet, _) = try tablet.write(try moodEntry(7), to: nil, clock: SystemWallClock())
        _ = try await Syncer(store: tablet).sync()
        try phone.write(try moodEntry(8), to: nil, clock: SystemWallClock())
        let behind = try await Syncer(store: phone).sync()
        #expect(behind.pulled > 0)
        #expect(try phone.state()[fromTablet] != nil)
        _ = try await Syncer(store: tablet).sync()
        #expect(try phone.canonicalDump() == (try tablet.canonicalDump()))
        #expect(try tablet.cursors() == (try phone.cursors()))
    }

    /// A patient who wrote offline and then enrolls: the first sync sends the entries and
    /// receives none of them back ("6 sent, 0 received", not "6 sent, 6 received").
    @Test(arguments: ServerStoreKind.allCases)
    func aFirstSyncIntoAnEmptyChannel_doesNotPullItsOwnWritesBack(storeKind: ServerStoreKind) async throws {
        let (dir, server) = try await InProcessServer.center("tandem-own-first", store: storeKind)
        let phone = try await server.device(dir, "phone")
        for value in 0..<2 { try phone.write(try moodEntry(value), to: nil, clock: SystemWallClock()) }
        let first = try await Syncer(store: phone).sync()
        #expect(first.pushed > 0)
        #expect(first.pulled == 0)
        // A second device of the member, whose channel is no longer empty, still gets it all.
        let tablet = try await server.device(dir, "tablet", linkedTo: phone)
        try tablet.write(try moodEntry(9), to: nil, clock: SystemWallClock())
        let second = try await Syncer(store: tablet).sync()
        #expect(second.pulled >= first.pushed)
        _ = try await Syncer(store: phone).sync()
        #expect(try phone.canonicalDump() == (try tablet.canonicalDump()))
    }

    @Test(arguments: ServerStoreKind.allCases)
    func aLiveNoticeAboutItsOwnPush_carriesTheCursorTheDeviceHas(storeKind: ServerStoreKind) async throws {
        let (dir, server) = try await InProcessServer.center("tandem-own", store: storeKind)
        let phone = try await server.device(dir, "phone")
        _ = try await Syncer(store: phone).sync()
        let token = try #require(try phone.binding()).token

        var configuration = WebSocketClientConfiguration()
        configuration.additionalHeaders[.authorization] = "Bearer \(token)"
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let notices = Locked<[LiveMessage]>([])
        let connection = Task {
            try await WebSocketClient.connect(url: server.url + "/v1/live", configuration: configuration, logger: logger) { inbound, _, _ in
                for try await message in inbound.messages(maxSize: 1 << 16) {
                    guard case .text(let text) = message else { continue }
                    let notice = try JSONDecoder().decode(LiveMessage.self, from: Data(text.utf8))
                    notices.withLock { $0.append(notice) }
                }
            }
        }
        defer { connection.cancel() }
        @Sendable func notice(_ index: Int) async throws -> LiveMessage {
            try await within(.seconds(30)) {
                while true {
                    if let notice = notices.withLock({ $0.count > index ? $0[index] : nil }) { return notice }
                    try await Task.sleep(for: .milliseconds(10))
                }
            }
        }
        let hello = try await notice(0)
        #expect(hello.type == "hello" && hello.cursors == nil)

        try phone.write(try moodEntry(4), to: nil, clock: SystemWallClock())
        _ = try await Syncer(store: phone).sync(pull: false)
        let advanced: LiveMessage? = try await notice(1)
        #expect(advanced?.type == "advanced")
        #expect(advanced?.cursors == (try phone.cursors()), "the push moved the cursor to where the notice says")
        #expect(!LiveWatch.needsPull(noticed: advanced?.cursors ?? [:], stored: try phone.cursors()))
    }
}
