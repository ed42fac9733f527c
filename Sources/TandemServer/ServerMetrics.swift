import CoreMetrics
import Metrics
public import Prometheus

/// The server's counters, exported at `GET /metrics` in Prometheus' text format.
///
/// Each server has its own registry (no process-wide `MetricsSystem.bootstrap`), so several
/// servers in one process, as in tests, never mix their figures. Labels carry routes and
/// statuses only: never a member, a device or anything a journal says.
public final class ServerMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    let factory: PrometheusMetricsFactory

    /// Changes stored by pushes (not counting replays).
    let changesAccepted: CoreMetrics.Counter
    /// Changes a push carried that the server already held (acknowledged again).
    let changesReplayed: CoreMetrics.Counter
    /// Changes listed in refusals.
    let changesRefused: CoreMetrics.Counter
    /// Time to answer a pull, from request to response.
    let pullLatency: Metrics.Timer
    /// Open live-push connections (WebSockets).
    let liveConnections: CoreMetrics.Meter
    /// Requests being handled right now.
    let requestsInFlight: CoreMetrics.Meter

    public init() {
        registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
            .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
            .seconds(1), .milliseconds(2500), .seconds(5),
        ]
        self.factory = factory
        changesAccepted = CoreMetrics.Counter(label: "tandem_changes_accepted_total", factory: factory)
        changesReplayed = CoreMetrics.Counter(label: "tandem_changes_replayed_total", factory: factory)
        changesRefused = CoreMetrics.Counter(label: "tandem_changes_refused_total", factory: factory)
        pullLatency = Metrics.Timer(label: "tandem_pull_duration_seconds", preferredDisplayUnit: .seconds, factory: factory)
        liveConnections = CoreMetrics.Meter(label: "tandem_live_connections", factory: factory)
        requestsInFlight = CoreMetrics.Meter(label: "tandem_http_requests_in_flight", factory: factory)
    }

    func pushed(accepted: Int, replayed: Int) {
        changesAccepted.increment(by: accepted)
        changesReplayed.increment(by: replayed)
    }

    func refused(_ count: Int) { changesRefused.increment(by: count) }

    func pulled(in duration: Duration) { pullLatency.record(duration: duration) }

    func requestStarted() { requestsInFlight.increment() }

    func requestEnded() { requestsInFlight.decrement() }

    func liveConnectionOpened() { liveConnections.increment() }

    func liveConnectionClosed() { liveConnections.decrement() }

    /// Counts one answered request under its route template and status.
    func request(route: String, status: Int, nanoseconds: Int64) {
        CoreMetrics.Counter(label: "tandem_http_requests_total", dimensions: [("route", route), ("status", String(status))], factory: factory)
            .increment()
        Metrics.Timer(label: "tandem_http_request_duration_seconds", dimensions: [("route", route)], preferredDisplayUnit: .seconds, factory: factory)
            .recordNanoseconds(nanoseconds)
    }

    /// The Prometheus text exposition of every metric.
    public func exposition() -> [UInt8] {
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return buffer
    }
}
