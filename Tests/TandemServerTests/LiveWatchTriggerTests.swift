@testable import TandemClient
import Testing

/// `sync --watch` collapses what it is asked while a sync runs into one more sync, which
/// pulls if any request needed a pull: a local write only pushes, a server notice pulls.
@Suite("Live watch requests")
struct LiveWatchTriggerTests {
    @Test func requestsCollapse_andAPullIsNeverLost() {
        let trigger = Trigger()
        #expect(trigger.take() == nil)

        trigger.request(pull: false)
        trigger.request(pull: false)
        #expect(trigger.take() == false, "local writes alone: a push")
        #expect(trigger.take() == nil, "taken once")

        trigger.request(pull: true)
        trigger.request(pull: false)
        #expect(trigger.take() == true, "a notice before a local write still pulls")

        trigger.request(pull: false)
        trigger.request(pull: true)
        #expect(trigger.take() == true)
    }
}
