@testable import TandemCLI
import TandemClient
import Testing

@Suite("Progress bar")
struct ProgressBarTests {
    @Test func render_fillsTheBarInProportion_andFitsTheWidth() {
        var progress = Syncer.Progress()
        progress.toSend = 12_000
        progress.sent = 3_000
        progress.received = 1_234_567
        let line = ProgressBar.render(progress, width: 80)
        #expect(line == "Syncing [#######-----------------------] 3,000/12,000 sent · received 1,234,567")
        #expect(line.count <= 80)
        progress.sent = 12_000
        let full = ProgressBar.render(progress, width: 80)
        let bar = full[full.firstIndex(of: "[")!...full.firstIndex(of: "]")!]
        #expect(bar.count > 7 && !bar.contains("-"))
        #expect(ProgressBar.render(progress, width: 30).count <= 30)
        #expect(ProgressBar.render(Syncer.Progress(received: 42), width: 80) == "Syncing: received 42")
    }

    @Test func aBarThatIsOff_drawsNothing() {
        let bar = ProgressBar(enabled: false)
        bar.update(Syncer.Progress(sent: 1, toSend: 2))
        bar.finish()
        #expect(!bar.enabled)
    }
}
