@testable import TandemClient
import Testing

/// `sync --watch` collapses what it is asked while a sync runs into one more sync, which
/// pulls if any request needed a pull: a local write only pushes, a server notice pulls
/// unless the device's cursors already stand where the notice says (its own push).
///
/// No server store of its own concern: the device's watcher.
@Suite("Live watch requests")
struct LiveWatchTriggerTests {
    @Test func requestsCollapse_andAPullIsNeverLost() {
        let trigger = Trigger()
        #expect(trigger.take() == nil)

        trigger.request(pull: false)
        trigger.request(pull: false)
        #expect(trigger.take() == .init(push: true, pull: false), "local writes alone: a push")
        #expect(trigger.take() == nil, "taken once")

        trigger.request(pull: true)
        trigger.request(pull: false)
        #expect(trigger.take() == .init(push: true, pull: true), "a reconnection before a local write still pulls")

        trigger.request(pull: false)
        trigger.request(pull: true)
        #expect(trigger.take()?.pull == true)
    }

    @Test func notices_keepTheLatestCursorOfEachSubscription() {
        let trigger = Trigger()
        trigger.notice(["own": "t1.e.own.5"])
        trigger.notice(["own": "t1.e.own.9", "m-p-metrics": "t1.e.m-p-metrics.9"])
        trigger.request(pull: false)
        #expect(trigger.take() == .init(push: true, pull: false, noticed: ["own": "t1.e.own.9", "m-p-metrics": "t1.e.m-p-metrics.9"]))
    }

    @Test func aNotice_needsAPullUnlessEveryCursorIsAlreadyThere() {
        let stored = ["own": "t1.e.own.9", "m-p-metrics": "t1.e.m-p-metrics.4"]
        #expect(!LiveWatch.needsPull(noticed: ["own": "t1.e.own.9"], stored: stored), "its own push: nothing to pull")
        #expect(LiveWatch.needsPull(noticed: ["own": "t1.e.own.10"], stored: stored))
        #expect(LiveWatch.needsPull(noticed: ["own": "t1.e.own.9", "m-p-metrics": "t1.e.m-p-metrics.7"], stored: stored))
        #expect(LiveWatch.needsPull(noticed: ["m-q-full": "t1.e.m-q-full.1"], stored: stored), "a subscription it has no cursor for")
        #expect(!LiveWatch.needsPull(noticed: [:], stored: stored))
    }

    /// What a failed sync was asked is asked again (`restore`), merged with what came
    /// since: a notice whose pull failed still pulls when a local write's push comes next.
    @Test func aFailedSyncsRequest_isAskedAgain_mergedWithLaterOnes() {
        let trigger = Trigger()
        trigger.notice(["own": "t2.e.own.5"])
        var failed = trigger.take()!
        failed.pull = true  // as the watch decides for a notice its cursors lack
        var owed = Trigger.Request()
        owed.merge(failed)
        trigger.request(pull: false)
        trigger.notice(["own": "t2.e.own.7"])
        trigger.restore(owed)
        #expect(trigger.take() == .init(push: true, pull: true, noticed: ["own": "t2.e.own.7"]), "the later notice's cursor, and the owed pull")
        trigger.restore(Trigger.Request())
        #expect(trigger.take() == .init(), "restoring nothing still wakes a sync, which asks for nothing")
    }
}
