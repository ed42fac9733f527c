import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// `openLoop`'s schedule (client `c` sends request `i` at `start + (c / clients + i) ×
/// interval`, or when its request `i - 1` came back if that is later), driven from the HTTP
/// client's own event loops: each client's requests are timed by `scheduleTask` (a
/// timerfd) on one event loop and sent there with AsyncHTTPClient's future API, so no
/// request waits for a Swift concurrency thread to wake up and hop to the loop. Latency is
/// still from the scheduled time. Every answer must be 200 and pass `check`.
func eventLoopOpenLoop(
    client: HTTPClient, clients: Int, perClient: Int, interval: Double, warmup: Double,
    request: @escaping @Sendable (Int) throws -> HTTPClient.Request,
    check: @escaping @Sendable (HTTPClient.Response) -> Bool = { _ in true }
) async -> LoadRun {
    let start = NIODeadline.now() + .milliseconds(100)
    let cpuBefore = cpuSeconds()
    var futures: [EventLoopFuture<LoadRun>] = []
    for index in 0..<clients {
        let device = ScheduledDevice(
            client: client, loop: client.eventLoopGroup.next(), index: index, clients: clients, perClient: perClient,
            interval: interval, warmup: warmup, start: start, request: request, check: check)
        futures.append(device.loop.flatSubmit { device.next() })
    }
    var all = LoadRun()
    for future in futures {
        // A device's futures only succeed: failures are counted in its run.
        if let run = try? await future.get() { all.add(run) }
    }
    all.latencies.sort()
    all.lags.sort()
    all.cpu = cpuSeconds() - cpuBefore
    all.seconds = Double((NIODeadline.now() - start).nanoseconds) / 1e9
    return all
}

/// One client of `eventLoopOpenLoop`; its state is touched on `loop` only.
private final class ScheduledDevice: @unchecked Sendable {
    // @unchecked: every mutable property is read and written on `loop` alone.
    let client: HTTPClient
    let loop: any EventLoop
    let index: Int
    let clients: Int
    let perClient: Int
    let interval: Double
    let warmup: Double
    let start: NIODeadline
    let request: @Sendable (Int) throws -> HTTPClient.Request
    let check: @Sendable (HTTPClient.Response) -> Bool
    var sent = 0
    var run = LoadRun()

    init(
        client: HTTPClient, loop: any EventLoop, index: Int, clients: Int, perClient: Int, interval: Double, warmup: Double,
        start: NIODeadline, request: @escaping @Sendable (Int) throws -> HTTPClient.Request,
        check: @escaping @Sendable (HTTPClient.Response) -> Bool
    ) {
        (self.client, self.loop, self.index, self.clients, self.perClient) = (client, loop, index, clients, perClient)
        (self.interval, self.warmup, self.start, self.request, self.check) = (interval, warmup, start, request, check)
    }

    /// Sends the next request at its time (at once if that has passed), then the one after;
    /// the run when all are answered.
    func next() -> EventLoopFuture<LoadRun> {
        loop.preconditionInEventLoop()
        guard sent < perClient else { return loop.makeSucceededFuture(run) }
        let offset = (Double(index) / Double(clients) + Double(sent)) * interval
        let scheduled = start + .nanoseconds(Int64(offset * 1e9))
        sent += 1
        return loop.flatScheduleTask(deadline: scheduled) { () -> EventLoopFuture<LoadRun> in
            let lag = NIODeadline.now() - scheduled
            let answer: EventLoopFuture<HTTPClient.Response>
            do {
                answer = self.client.execute(request: try self.request(self.index), eventLoop: .delegateAndChannel(on: self.loop))
            } catch {
                answer = self.loop.makeFailedFuture(error)
            }
            return answer.flatMap { response -> EventLoopFuture<LoadRun> in
                let ok = response.status == .ok && self.check(response)
                if offset >= self.warmup {
                    self.run.measured += 1
                    if ok {
                        self.run.latencies.append(Double((NIODeadline.now() - scheduled).nanoseconds) / 1e6)
                        self.run.lags.append(Double(lag.nanoseconds) / 1e6)
                    }
                }
                if !ok { self.run.failures += 1 }
                return self.next()
            }.flatMapError { _ in
                self.run.failures += 1
                if offset >= self.warmup { self.run.measured += 1 }
                return self.next()
            }
        }.futureResult
    }
}
