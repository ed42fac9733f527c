import Foundation
import TandemCore
import TandemStore
import TandemTestSupport
import Testing

/// A server's answer with times beyond what the store keeps is refused with a clear error
/// and changes nothing; the device does not crash on it.
@Suite("Store: hostile answers")
struct StoreHostileAnswerTests {
    @Test(arguments: [UInt64(Int64.max) + 1, UInt64.max])
    func aServerTimeBeyondRange_isRefused_notATrap(_ serverTime: UInt64) throws {
        let dir = try TemporaryDirectory()
        let store = try ReplicaStore.create(at: dir.path("r.sqlite"), name: "Sam", role: .patient, wallMillis: 1_767_600_000_000)
        let before = try store.canonicalDump()
        #expect(throws: StoreError.self) {
            try store.applyPulled([], active: [:], serverTimeMillis: serverTime, localMillis: 1_767_600_000_000)
        }
        #expect(throws: StoreError.self) {
            try store.restamp(mark: nil, serverTimeMillis: serverTime, localMillis: 1_767_600_000_000)
        }
        #expect(try store.canonicalDump() == before)
    }
}
