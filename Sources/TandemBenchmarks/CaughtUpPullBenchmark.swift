import ArgumentParser
import Foundation
import TandemProcess
import TandemCore
import TandemProtocol
import TandemServer

/// Issue 5's caught-up pull benchmark: N devices, each caught up with its member's channel
/// (the store holding M changes in all), pull once a second while other devices push
/// R changes/s; latency at the client. Baseline: an echo route on the same server, same
/// schedule, same body size. The server runs in a child process; this process is the load.
struct CaughtUpPullBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "caught-up-pull",
        abstract: "Pull latency of caught-up devices (1/s each) with M changes stored and R changes/s pushed; echo route as baseline."
    )

    @Option(help: "Devices pulling, one member each.")
    var devices = 200

    @Option(help: "Changes stored before the run, spread over the pulling devices' channels.")
    var stored = 1_000_000

    @Option(help: "Changes per second pushed meanwhile (by 20 other devices, batches of 20).")
    var pushRate = 1_000

    @Option(help: "Seconds measured per phase (echo, then pull), after 3 s of warm-up each.")
    var duration = 30

    @Option(help: "Also a mentor's device, caught up with this many of the pulling patients under metrics consents, pulling 10 times a second during the pull phase (0: none).")
    var mentorPatients = 0

    @Option(help: ArgumentHelp(
        "Run on PostgreSQL instead of SQLite: a URL of the cluster's maintenance database; the benchmark creates (and drops) its own database.",
        valueName: "postgres://user@host:port/postgres"))
    var postgres: String?

    func run() async throws {
        raiseFileLimit()
        let folder = try BenchFolder()
        defer { folder.remove() }
        let store = try BenchStore(path: folder.path + "/center.sqlite", postgres: postgres)
        defer { store.remove() }
        let pushers = 20
        let warmup = 3

        // Members and devices; the stored changes pushed through ServerStorage in batches of 1,000.
        var pullers: [BenchDevice] = []
        var pushDevices: [BenchDevice] = []
        let fillStarted = now()
        let head: Int64
        var channelHeads: [Int64] = []
        var allHeads: [MemberID: Int64] = [:]
        var mentor: BenchDevice? = nil
        do {
            let storage = store.storage
            _ = try await storage.initialize(staffName: "Bench", nowMillis: UInt64(now() * 1000))
            for index in 0..<devices { pullers.append(try await BenchDevice.enroll("puller-\(index)", into: storage)) }
            for index in 0..<pushers { pushDevices.append(try await BenchDevice.enroll("pusher-\(index)", into: storage)) }
            let perDevice = stored / devices
            for index in 0..<devices {
                let stream = try pullers[index].changes(perDevice, seed: index)
                for start in stride(from: 0, to: perDevice, by: 1_000) {
                    let changes = Array(stream[start..<min(start + 1_000, perDevice)])
                    _ = try await storage.push(changes, from: pullers[index].principal, repush: false, nowMillis: UInt64(now() * 1000), maxSkewMillis: 60_000)
                }
            }
            if mentorPatients > 0 {
                // A mentor assigned to the first patients, each of whom grants a metrics consent.
                let device = try await BenchDevice.enroll("mentor", role: .mentor, into: storage)
                mentor = device
                for index in 0..<min(mentorPatients, devices) {
                    let patient = pullers[index].principal.member
                    _ = try await storage.setAssignment(Assignment(.mentor, carer: device.principal.member, member: patient), present: true, nowMillis: UInt64(now() * 1000))
                    let edit = ConsentEdit.grant(patient: patient, recipient: device.principal.member, scope: .metrics, expiresMillis: nil, purpose: "benchmark")
                    let consent = try pullers[index].writer.write(edit, to: .random(), current: nil, wallMillis: UInt64(now() * 1000))
                    _ = try await storage.push(consent, from: pullers[index].principal, repush: false, nowMillis: UInt64(now() * 1000), maxSkewMillis: 60_000)
                }
            }
            let commits = try await storage.commits(after: 0)
            allHeads = commits.channels
            channelHeads = pullers.map { commits.channels[$0.principal.member] ?? 0 }
            head = channelHeads.reduce(0, +)
        }
        print("""
        Caught-up pull on \(store.kind): \(devices) devices pulling once a second, \(head) changes stored (filled in \(format(now() - fillStarted, 0)) s, \
        \(store.bytes() / 1_048_576) MiB), \(pushRate) changes/s pushed by \(pushers) other devices; \(warmup) s warm-up + \(duration) s per phase.
        """)

        let (server, port) = try spawnServer(store: store.serverArguments, echo: true)
        defer { server.terminate() }
        let client = PushClient(base: "http://127.0.0.1:\(port)", connections: devices + pushers)

        // Each puller learns its subscription's key and the epoch, then starts at the head.
        var bodies: [[UInt8]] = []
        for (puller, channelHead) in zip(pullers, channelHeads) {
            let first = try await client.post("/v1/pull", token: puller.token, json: PullRequest(cursors: [:], limit: 1))
            let answer = try JSONDecoder().decode(PullResponse.self, from: Data(first))
            var cursors: [String: String] = [:]
            for page in answer.pages { cursors[page.key] = Cursor(epoch: answer.epoch, key: page.key, sequence: channelHead).encoded }
            // As a device asks once it holds its subscriptions and directory (a compact answer).
            let held = (answer.subscriptions ?? []).map { (key: $0.key, until: $0.until) }
            bodies.append(Array(try JSONEncoder().encode(PullRequest(
                cursors: cursors, directory: answer.directoryDigest, subscriptions: SubscriptionDigest.of(held)))))
        }

        // The mentor starts caught up too: each subscription at its channel's head.
        var mentorBody: [UInt8] = []
        if let mentor {
            let first = try await client.post("/v1/pull", token: mentor.token, json: PullRequest(cursors: [:], limit: 1))
            let answer = try JSONDecoder().decode(PullResponse.self, from: Data(first))
            var cursors: [String: String] = [:]
            let subscriptions = answer.subscriptions ?? []
            for subscription in subscriptions {
                let channel = try MemberID(hex: String(subscription.channel.dropFirst("member:".count)))
                cursors[subscription.key] = Cursor(epoch: answer.epoch, key: subscription.key, sequence: allHeads[channel] ?? 0).encoded
            }
            guard subscriptions.count == min(mentorPatients, devices) + 1 else {
                throw BenchError.childFailed("the mentor holds \(subscriptions.count) subscriptions")
            }
            mentorBody = Array(try JSONEncoder().encode(PullRequest(
                cursors: cursors, directory: answer.directoryDigest,
                subscriptions: SubscriptionDigest.of(subscriptions.map { (key: $0.key, until: $0.until) }))))
        }

        // The pushers: pre-encoded batches on an open-loop schedule, for both phases.
        let pushInterval = Double(20 * pushers) / Double(pushRate)
        let pushBatches = Int((Double(2 * (warmup + duration) + 2) / pushInterval).rounded(.up))
        let plan = try PushPlan(devices: pushDevices, batchesPerDevice: pushBatches, batch: 20)
        let (pushing, pulling, pullBodies) = (pushDevices, pullers, bodies)
        let pushes = Task {
            await openLoop(clients: pushing.count, perClient: pushBatches, interval: pushInterval, warmup: 0) { device, index in
                try await client.push(plan.bodies[device][index], token: pushing[device].token)
            }
        }

        let serverPID = server.pid
        let perDevice = warmup + duration
        var cpu = cpuSeconds(of: serverPID)
        let echo = await openLoop(clients: devices, perClient: perDevice, interval: 1, warmup: Double(warmup)) { device, _ in
            _ = try await client.post("/bench/echo", token: pulling[device].token, body: pullBodies[device], type: "application/json", accept: BinaryPull.mediaType)
            return 0
        }
        report("baseline: echo route (same server, same body)", echo, serverCPU: cpuSeconds(of: serverPID) - cpu)
        cpu = cpuSeconds(of: serverPID)
        // The mentor's pulls, 10 a second, during the same phase and under the same load.
        let (mentorToken, body) = (mentor?.token, mentorBody)
        let mentorPulls = Task { () -> LoadRun? in
            guard let mentorToken else { return nil }
            return await openLoop(clients: 1, perClient: perDevice * 10, interval: 0.1, warmup: Double(warmup)) { _, _ in
                let answer = try await client.post("/v1/pull", token: mentorToken, body: body, type: "application/json", accept: BinaryPull.mediaType)
                guard answer.count < 16_384 else { throw BenchError.childFailed("a caught-up mentor pull returned \(answer.count) bytes") }
                return 0
            }
        }
        let pulls = await openLoop(clients: devices, perClient: perDevice, interval: 1, warmup: Double(warmup)) { device, _ in
            // As `tandem` asks: the binary answer.
            let answer = try await client.post("/v1/pull", token: pulling[device].token, body: pullBodies[device], type: "application/json", accept: BinaryPull.mediaType)
            guard answer.count < 4096 else { throw BenchError.childFailed("a caught-up pull returned \(answer.count) bytes") }
            return 0
        }
        report("POST /v1/pull, caught up", pulls, serverCPU: cpuSeconds(of: serverPID) - cpu)
        let mentorRun = await mentorPulls.value
        if let mentorRun {
            let gap = mentorRun.percentile(0.99) - pulls.percentile(0.99)
            print("  a mentor's POST /v1/pull, caught up with \(min(mentorPatients, devices)) consented patients (10/s, same phase):")
            print("    requests measured  \(mentorRun.latencies.count), failed \(mentorRun.failures)")
            print("    latency at client  p50 \(format(mentorRun.percentile(0.50), 3)) ms   p99 \(format(mentorRun.percentile(0.99), 3)) ms   max \(format(mentorRun.latencies.last ?? .nan, 3)) ms")
            print("    of which the load generator's own lag in starting them  p50 \(format(mentorRun.lag(0.50), 3)) ms   p99 \(format(mentorRun.lag(0.99), 3)) ms   max \(format(mentorRun.lags.last ?? .nan, 3)) ms")
            print("    p99 against one subscription's  \(gap >= 0 ? "+" : "")\(format(gap, 3)) ms   (target within 1 ms: \(gap <= 1 ? "met" : "NOT met"))")
        }
        let pushed = await pushes.value
        print("  pushes meanwhile: \(pushed.latencies.count) batches, failed \(pushed.failures), p99 \(format(pushed.percentile(0.99), 2)) ms")
        try await client.shutdown()
        // A failed pull or push makes the figures untrue (a latency target missed only reports).
        var reasons: [String] = []
        if echo.failures > 0 { reasons.append("\(echo.failures) echo requests failed") }
        if pulls.failures > 0 { reasons.append("\(pulls.failures) pulls failed (or were not caught up)") }
        if let mentorRun, mentorRun.failures > 0 { reasons.append("\(mentorRun.failures) mentor pulls failed (or were not caught up)") }
        if pushed.failures > 0 { reasons.append("\(pushed.failures) pushes of the load refused or timed out") }
        if !reasons.isEmpty { throw BenchmarkFailure(reasons: reasons) }
    }

    func report(_ title: String, _ run: LoadRun, serverCPU: Double) {
        print("""
          \(title):
            requests measured  \(run.latencies.count), failed \(run.failures)
            latency at client  p50 \(format(run.percentile(0.50), 3)) ms   p90 \(format(run.percentile(0.90), 3)) ms   \
        p99 \(format(run.percentile(0.99), 3)) ms   max \(format(run.latencies.last ?? .nan, 3)) ms   (target p99 < 2 ms: \(run.percentile(0.99) < 2 ? "met" : "NOT met"))
            of which the load generator's own lag in starting them (scheduled → sent)  \
        p50 \(format(run.lag(0.50), 3)) ms   p99 \(format(run.lag(0.99), 3)) ms   max \(format(run.lags.last ?? .nan, 3)) ms
            CPU                server \(format(serverCPU, 2)) s   load generator \(format(run.cpu, 2)) s
        """)
    }
}
