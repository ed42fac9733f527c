import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOHTTP1
import NIOWebSocket
import ServiceLifecycle
import TandemCore
import TandemProtocol

/// Counts the open live connections of each device, to cap them.
actor LiveConnections {
    private var open: [RecordID: Int] = [:]

    func count(_ device: RecordID) -> Int { open[device] ?? 0 }

    /// Takes a slot for `device`, or returns false when it holds `limit` already.
    func take(_ device: RecordID, limit: Int) -> Bool {
        let current = open[device] ?? 0
        guard current < limit else { return false }
        open[device] = current + 1
        return true
    }

    func give(_ device: RecordID) {
        let current = (open[device] ?? 1) - 1
        open[device] = current > 0 ? current : nil
    }
}

extension SyncServer {
    static let livePath = "/v1/live"

    /// Decides an upgrade to a live connection: `GET /v1/live` with a device token that
    /// authenticates and a free connection slot. A refused upgrade is answered like every
    /// other request (§9.12): its status and the JSON error body, counted in the failed
    /// sign-in throttle, the request log and `/metrics`. (Hummingbird would answer a bare
    /// 400 to any refused upgrade, so the answer is written here, with `Connection: close`,
    /// before declining.) Upgrade requests for other paths are declined to the router.
    func shouldUpgrade(
        _ head: HTTPRequest, channel: any Channel
    ) async -> ShouldUpgradeResult<WebSocketDataHandler<HTTP1WebSocketUpgradeChannel.Context>> {
        guard head.method == .get, (head.path ?? "").split(separator: "?").first.map(String.init) == Self.livePath else { return .dontUpgrade }
        let started = ContinuousClock.now
        metrics.requestStarted()
        defer { metrics.requestEnded() }
        var log: Logger.Metadata = ["route": "\(Self.livePath)", "upgrade": "1"]
        let address = TandemRequestContext.clientAddress(
            peer: channel.remoteAddress, forwardedFor: head.headerFields[HTTPField.Name("X-Forwarded-For")!], trustedProxy: limits.trustedProxy)
        do {
            try Self.checkVersion(head.headerFields[HTTPField.Name(WireProtocol.header)!])
            let tokenHash = try Self.bearerTokenHash(head.headerFields[.authorization])
            var metadata = log
            let principal = try await Self.$clientAddress.withValue(address) { try await authenticate(tokenHash: tokenHash, &metadata) }
            log = metadata
            guard let device = principal.device else { throw ServerError.forbidden("Only an enrolled device opens a live connection.") }
            guard await liveConnections.count(device) < limits.maxLiveConnectionsPerDevice else {
                throw ServerError.tooManyConnections(limits.maxLiveConnectionsPerDevice)
            }
            record(Self.livePath, status: 101, since: started, log)
            return .upgrade([:]) { inbound, outbound, _ in
                await live(principal, device: device, tokenHash: tokenHash, inbound: inbound, outbound: outbound)
            }
        } catch {
            let refusal = error as? ServerError ?? .unavailable("The server failed; try again later.")
            log["error"] = "\(refusal.code)"
            // Counted before it is answered: a client that reads the metrics next sees it.
            record(Self.livePath, status: refusal.status, since: started, log)
            await answer(refusal, on: channel)
            return .dontUpgrade
        }
    }

    /// Writes a refusal as a whole HTTP/1.1 answer on a connection still in the upgrade
    /// negotiation, asking the client to close it.
    func answer(_ error: ServerError, on channel: any Channel) async {
        guard let body = try? errorBody(error) else { return }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Content-Length", value: String(body.count))
        headers.add(name: "Connection", value: "close")
        headers.add(name: "Tandem-Server-Time", value: String(wallClock.nowMillis()))
        if case .throttled(let seconds) = error { headers.add(name: "Retry-After", value: String(seconds)) }
        let status = HTTPResponseStatus(statusCode: error.status)
        channel.write(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers)), promise: nil)
        channel.write(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(bytes: body))), promise: nil)
        try? await channel.writeAndFlush(HTTPServerResponsePart.end(nil)).get()
    }

    /// The router's answer to a `GET /v1/live` that was not upgraded.
    func liveRefusal(_ request: Request, _ log: inout Logger.Metadata) async throws -> Response {
        try checkVersion(request)
        let principal = try await authenticate(request, &log)
        if let device = principal.device, await liveConnections.count(device) >= limits.maxLiveConnectionsPerDevice {
            throw ServerError.tooManyConnections(limits.maxLiveConnectionsPerDevice)
        }
        throw ServerError.upgradeRequired
    }

    /// One live connection: `hello`, then `advanced` for every commit that touches one of the
    /// device's subscriptions, until the device leaves, is revoked or the server stops.
    func live(_ principal: Principal, device: RecordID, tokenHash: [UInt8], inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter) async {
        var log: Logger.Metadata = ["route": "\(Self.livePath)", "member": "\(principal.member.hex.prefix(8))", "device": "\(device.hex.prefix(8))"]
        guard await liveConnections.take(device, limit: limits.maxLiveConnectionsPerDevice) else {
            try? await outbound.close(.unknown(LiveCloseCode.tooMany), reason: "too many live connections for this device")
            return
        }
        metrics.liveConnectionOpened()
        logger.info("live connection opened", metadata: log)
        let (subscriber, commits) = await feed.subscribe()

        enum Ending: Sendable { case left, revoked, failed, shutdown }
        // What the notices answer: a commit, or the periodic look (revocation, and grants
        // that change with no commit: an expiry, an assignment ended on the host).
        enum Event: Sendable { case commit(Commits), look }
        let (events, eventSink) = AsyncStream<Event>.makeStream()
        let ending = await withTaskGroup(of: Ending.self) { group in
            // The device says nothing; reading notices when it closes.
            group.addTask {
                do { for try await _ in inbound {} } catch {}
                return .left
            }
            group.addTask {
                for await commit in commits { eventSink.yield(.commit(commit)) }
                return .left
            }
            group.addTask {
                do {
                    var (grants, recordHeads) = try await self.grants(for: principal)
                    var granted = grants.map { $0.key(for: principal) }
                    try await send(.init(type: "hello", subscriptions: granted, serverTime: wallClock.nowMillis()), outbound)
                    let epoch = try await storage.epoch()
                    for await event in events {
                        // The grants of this moment: a subscription gained or lost (a consent
                        // granted, revoked or expired; an assignment ended; a note shared or
                        // unshared) is told at once, and the device pulls, which purges what
                        // it may no longer hold.
                        let heads: [RecordID: Int64]
                        (grants, heads) = try await self.grants(for: principal)
                        let now = grants.map { $0.key(for: principal) }
                        if now != granted {
                            granted = now
                            recordHeads = heads
                            try await send(.init(type: "subscriptions", subscriptions: now, serverTime: wallClock.nowMillis()), outbound)
                            continue
                        }
                        guard case .commit(let commit) = event else { continue }
                        // A one-record subscription advanced only if its record did: its
                        // channel's other changes are not the device's to hear of.
                        let advanced = Self.advanced(grants, for: principal, in: commit, recordHeads: heads, known: recordHeads)
                        recordHeads = heads
                        guard !advanced.isEmpty else { continue }
                        var cursors: [String: String]? = [:]
                        for (key, last) in advanced {
                            guard let last else { cursors = nil; break }
                            cursors?[key] = Cursor(epoch: epoch, key: key, sequence: last).encoded
                        }
                        try await send(.init(type: "advanced", subscriptions: advanced.map(\.key), cursors: cursors, serverTime: wallClock.nowMillis()), outbound)
                    }
                    return .left
                } catch {
                    return .failed
                }
            }
            // Revocation is written by staff on the server's host, not through a push:
            // each connection checks its token again every few seconds, and looks at its
            // grants then too; and at once when the store tells of a revocation of its
            // member's credentials, or of anyone's when it cannot say whose (then after a
            // random delay under a second, so that every connection of the instance does not
            // read the store in the same instant). What the store has heard is read before
            // each check, and the wait after it returns at once if that moved: a revocation
            // heard while the token was being checked (the check may have read the store
            // before it) is looked at at once, not at the next period. The first check
            // covers the time since the upgrade's.
            group.addTask {
                let period = limits.liveRevocationCheck
                var heard = storage.revocationsHeard
                var due = ContinuousClock.now
                var checkNow = true
                var first = true
                while !Task.isCancelled {
                    if checkNow || ContinuousClock.now >= due {
                        heard = storage.revocationsHeard
                        var checked = true
                        do { _ = try await storage.authenticate(tokenHash: tokenHash) } catch let error as ServerError where error == .revoked || error == .unauthorized {
                            return .revoked
                        } catch {
                            // The store did not answer: try again in a second, not a period.
                            checked = false
                        }
                        if !first { eventSink.yield(.look) }
                        first = false
                        checkNow = false
                        due = ContinuousClock.now + (checked ? period : min(period, .seconds(1)))
                    }
                    await storage.awaitRevocation(after: heard, timeout: max(.zero, due - ContinuousClock.now))
                    let now = storage.revocationsHeard
                    guard now != heard else { continue }
                    switch storage.membersRevoked(since: heard) {
                    case .some(let members) where !members.contains(principal.member):
                        // Other members' revocations: nothing of this connection's changed.
                        heard = now
                    case .some:
                        checkNow = true
                    case .none:
                        try? await Task.sleep(for: .milliseconds(Int.random(in: 0..<1_000)))
                        checkNow = true
                    }
                }
                return .left
            }
            group.addTask {
                do { try await gracefulShutdown() } catch { return .left }
                return .shutdown
            }
            let first = await group.next() ?? .left
            // Closing ends the reading task once the device answers (or after the close timeout).
            switch first {
            case .revoked: try? await outbound.close(.unknown(LiveCloseCode.revoked), reason: "This device was revoked by the center; enroll it again.")
            case .failed: try? await outbound.close(.unexpectedServerError, reason: "The server failed; reconnect.")
            case .shutdown: try? await outbound.close(.goingAway, reason: "The server is restarting; reconnect.")
            case .left: try? await outbound.close(.normalClosure, reason: nil)
            }
            group.cancelAll()
            return first
        }
        await feed.unsubscribe(subscriber)
        await liveConnections.give(device)
        metrics.liveConnectionClosed()
        log["ending"] = "\(ending)"
        logger.info("live connection closed", metadata: log)
    }

    /// The policy's grants for `principal` now, with the head of each one-record grant's
    /// record, from one snapshot of the store.
    func grants(for principal: Principal) async throws -> ([Grant], [RecordID: Int64]) {
        let (policy, memo) = (self.policy, self.sharingMemo)
        return try await storage.read { store in
            let grants = try memo.view(for: principal, policy: policy, in: store).grants
            var heads: [RecordID: Int64] = [:]
            for record in grants.compactMap(\.record) { heads[record] = try store.recordHead(record) }
            return (grants, heads)
        }
    }

    /// The subscription keys `commit` advanced (all of them for a reset), each with its
    /// position in the commit (nil for a reset): a channel's highest sequence number, or
    /// for a one-record grant its record's, when it moved past what was `known`.
    static func advanced(
        _ grants: [Grant], for principal: Principal, in commit: Commits, recordHeads: [RecordID: Int64], known: [RecordID: Int64]
    ) -> [(key: String, last: Int64?)] {
        grants.compactMap { grant in
            guard !commit.reset else { return (grant.key(for: principal), nil) }
            guard let last = commit.channels[grant.channel] else { return nil }
            if let record = grant.record {
                guard let head = recordHeads[record], head > known[record] ?? 0 else { return nil }
                return (grant.key(for: principal), head)
            }
            return (grant.key(for: principal), last)
        }
    }

    func send(_ message: LiveMessage, _ outbound: WebSocketOutboundWriter) async throws {
        let data = try JSONEncoder().encode(message)
        try await outbound.write(.text(String(decoding: data, as: UTF8.self)))
    }
}
