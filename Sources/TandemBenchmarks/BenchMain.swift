import ArgumentParser

@main
struct TandemBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tandem-bench",
        abstract: "Tandem's benchmarks. Run in a release build: swift run -c release tandem-bench <benchmark>.",
        subcommands: [StoreApplyBenchmark.self, StoreApplyPhase.self, WireSizeBenchmark.self, InitialSyncBenchmark.self, InitialSyncDevice.self, IdleConnectionsBenchmark.self, BenchServerChild.self, IngestBenchmark.self, CaughtUpPullBenchmark.self, WriteToVisibleBenchmark.self, DashboardBenchmark.self]
    )
}
