public import Logging
public import ServiceLifecycle
public import TandemCore

/// Prunes the accounting of disclosures to its retention period (6 years by default, never
/// under 3: 42 CFR Part 2's window), at start and then once a day, until the server stops.
/// Each chain stays verifiable from the oldest entry kept (`pruneAccounting`).
public struct AccountingPruner: Service {
    let store: any ServerAdministration
    let retentionYears: Int
    let wallClock: any WallClock
    let interval: Duration
    let logger: Logger

    public init(
        store: any ServerAdministration, retentionYears: Int, wallClock: any WallClock, interval: Duration = .seconds(86_400), logger: Logger
    ) {
        self.store = store
        self.retentionYears = retentionYears
        self.wallClock = wallClock
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                while true {
                    do {
                        let pruned = try await store.pruneAccounting(retentionYears: retentionYears, nowMillis: Int64(wallClock.nowMillis()))
                        if pruned > 0 { logger.notice("pruned the accounting", metadata: ["entries": "\(pruned)", "retention_years": "\(retentionYears)"]) }
                    } catch {
                        // Kept until the next try: an entry pruned late is kept longer, never lost early.
                        logger.error("pruning the accounting failed", metadata: ["error": "\(error)"])
                    }
                    try await Task.sleep(for: interval)
                }
            }
        } catch is CancellationError {
            // The server is stopping.
        }
    }
}
