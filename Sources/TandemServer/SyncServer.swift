public import Foundation
import HTTPTypes
public import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
public import Logging
import NIOCore
import NIOHTTP1
public import ServiceLifecycle
import TandemCompression
public import TandemCore
import TandemProtocol

/// The center's sync server: HTTP routes over a `ServerStorage`.
///
/// ```swift
/// let server = SyncServer(storage: try SQLiteServerStorage(path: "center.sqlite"))
/// try await server.application(host: "127.0.0.1", port: 8080).runService()
/// ```
public struct SyncServer: Sendable {
    public struct Limits: Sendable {
        /// Compressed request bytes.
        public var maxRequestBytes = 8 << 20
        /// Inflated batch bytes.
        public var maxBatchBytes = 16 << 20
        public var maxChangesPerBatch = 10_000
        /// Held changes a pull's answer reads, all its pages together, when the device
        /// names no `limit` (PROTOCOL.md §9.4).
        public var pullPageSize = 2_000
        /// The largest `limit` a device may ask for; more is served as this. It bounds
        /// what one answer holds in memory, whatever the number of subscriptions.
        public var maxPullPageSize = 64_000
        /// The held changes' bytes one pull answer carries at most (past its first change):
        /// a device reads at most 64 MiB of a page, and 64,000 long texts would be more.
        public var maxPullAnswerBytes = Self.defaultPullAnswerBytes
        public static let defaultPullAnswerBytes = 16 << 20
        /// How far ahead of the server's clock a change may be stamped.
        public var maxSkewMillis: UInt64 = 60_000
        /// The bytes of held changes one member may keep on the server; pushes past it get
        /// 413 `over-quota`.
        public var memberQuotaBytes: Int64 = 256 << 20
        /// Open live connections per device; more are refused (429, or close code 4429).
        public var maxLiveConnectionsPerDevice = 4
        /// Unused link codes a member may hold at once (`POST /v1/link`); more get 429.
        public var maxUnusedLinkCodes = 3
        /// The largest WebSocket frame accepted from a device (it has nothing to say).
        public var maxLiveFrameBytes = 4_096
        /// How often a live connection checks that its device is still enrolled.
        public var liveRevocationCheck: Duration = .seconds(5)
        /// The smallest cell the center's statistics publish (`GET /v1/outcomes`); never
        /// below 11, the CMS rule.
        public var outcomeMinimumCell = OutcomeQuery.smallestMinimumCell
        /// Failed authentications with one token in a minute before it gets 429.
        public var failedAuthPerToken = 10
        /// Failed authentications from one address in a minute (behind `trustedProxy` only).
        public var failedAuthPerAddress = 100
        /// Failed enrollments (unknown, used or expired codes) from one client address in a
        /// minute before that address gets 429; other addresses are not affected.
        public var failedEnrollPerAddress = 20
        /// Failed enrollments from all addresses together in a minute: a backstop far above
        /// any real rate, against guessing from many addresses at once.
        public var failedEnrollTotal = 1_000
        /// The reverse proxy whose `X-Forwarded-For` names the client (nil: none trusted).
        public var trustedProxy: String? = nil
        /// How long a new connection may take to send its first request head; it is closed
        /// after that, and at once when the server stops (`FirstRequestDeadline`).
        public var firstRequestHead: Duration = .seconds(30)
        /// How long a kept-alive HTTP connection may sit between requests before it is
        /// closed: longer than the client's own pool keeps an idle connection (60 s), so
        /// the client closes first and never sends on a connection being closed.
        public var idleConnection: Duration = .seconds(75)
        /// How long a request's body may take to arrive after its head; later, 408 and the
        /// connection is closed (`RequestBodyDeadline`).
        public var requestBody: Duration = .seconds(30)
        /// The largest `/v1/enroll` body: it is unauthenticated, so it gets no more.
        public var maxEnrollBytes = 4_096
        /// After the server is told to stop, how long a connection may still finish what
        /// it is doing before it is closed, whatever the client does.
        public var shutdownGrace: Duration = .seconds(5)
        public init() {}
    }

    public let storage: any ServerStorage
    public let policy: any SharingPolicy
    public let limits: Limits
    public let wallClock: any WallClock
    public let metrics: ServerMetrics
    public let logger: Logger
    /// The commit feed live connections listen to.
    public let feed: CommitFeed
    let liveConnections = LiveConnections()
    let authThrottle: AuthThrottle
    let knownTokens = KnownTokens()
    /// Each member's grants and directory, kept while the store's sharing version stays.
    let sharingMemo = SharingMemo()

    public init(
        storage: any ServerStorage, policy: (any SharingPolicy)? = nil, limits: Limits = Limits(),
        wallClock: any WallClock = SystemClock(), logger: Logger = SyncServer.defaultLogger()
    ) {
        self.storage = storage
        // The shipped policy reads consents at the server's own clock.
        self.policy = policy ?? ConsentPolicy(clock: wallClock)
        self.limits = limits
        self.wallClock = wallClock
        self.metrics = ServerMetrics()
        self.logger = logger
        self.feed = CommitFeed(storage: storage)
        self.authThrottle = AuthThrottle(perToken: limits.failedAuthPerToken, perAddress: limits.failedAuthPerAddress)
    }

    /// `tandem` at `LOG_LEVEL` (info when unset or unknown).
    public static func defaultLogger() -> Logger {
        var logger = Logger(label: "tandem")
        logger.logLevel = ProcessInfo.processInfo.environment["LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
        return logger
    }

    /// The wall clock of the server's machine.
    public struct SystemClock: WallClock {
        public init() {}
        public func nowMillis() -> UInt64 { UInt64(max(0, Date().timeIntervalSince1970 * 1000)) }
    }

    public static let protocolVersion = WireProtocol.version

    /// Every route, with its methods (Protocol/openapi.yaml).
    static let routes: [String: [HTTPRequest.Method]] = [
        "/health": [.get], "/metrics": [.get], "/v1/enroll": [.post], "/v1/link": [.post], "/v1/push": [.post],
        "/v1/pull": [.post], "/v1/devices": [.get], "/v1/live": [.get], "/v1/audit": [.get],
        "/v1/emergency/journal": [.post], "/v1/outcomes": [.get],
        "/dashboard": [.get], "/dashboard/style.css": [.get], "/dashboard/sign-in": [.post], "/dashboard/sign-out": [.post],
    ]

    /// The Hummingbird application; `onListening` gets the bound port. `middleware` wraps
    /// every route (an embedding application's own, or a test's fault injection); `services`
    /// run beside the server and stop with it (`AccountingPruner`).
    public func application(
        host: String, port: Int, middleware: [any MiddlewareProtocol<Request, Response, TandemRequestContext>] = [],
        services: [any Service] = [], onListening: @escaping @Sendable (Int) -> Void = { _ in }
    ) -> some ApplicationProtocol {
        let router = Router(context: TandemRequestContext.self)
        router.add(middleware: UnmatchedRoutes(routes: Self.routes, server: self))
        for item in middleware { router.add(middleware: item) }
        router.get("health") { _, _ in try json(["status": "ok"]) }
        router.get("metrics") { _, _ in
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4"
            headers[HTTPField.Name("Tandem-Server-Time")!] = String(wallClock.nowMillis())
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: metrics.exposition())))
        }
        router.post("v1/enroll") { request, context in await handle("/v1/enroll", request, context) { log in try await enroll(request, &log) } }
        router.post("v1/link") { request, context in await handle("/v1/link", request, context) { log in try await link(request, &log) } }
        router.post("v1/push") { request, context in await handle("/v1/push", request, context) { log in try await push(request, &log) } }
        router.post("v1/pull") { request, context in await handle("/v1/pull", request, context) { log in try await pull(request, &log) } }
        router.get("v1/devices") { request, context in await handle("/v1/devices", request, context) { log in try await devices(request, &log) } }
        router.get("v1/audit") { request, context in await handle("/v1/audit", request, context) { log in try await audit(request, &log) } }
        router.post("v1/emergency/journal") { request, context in
            await handle("/v1/emergency/journal", request, context) { log in try await emergencyRead(request, &log) }
        }
        router.get("v1/outcomes") { request, context in await handle("/v1/outcomes", request, context) { log in try await outcomes(request, &log) } }
        dashboardRoutes(router)
        router.get("v1/live") { request, context in await handle("/v1/live", request, context) { log in try await liveRefusal(request, &log) } }
        var hummingbirdLogger = logger
        hummingbirdLogger.logLevel = max(logger.logLevel, .notice)
        let webSocket = WebSocketServerConfiguration(maxFrameSize: limits.maxLiveFrameBytes, autoPing: .enabled(timePeriod: .seconds(30)))
        return Application(
            router: router,
            server: HTTPServerBuilder { responder in
                FirstRequestDeadline(
                    inner: HTTP1WebSocketUpgradeChannel(
                        responder: responder,
                        configuration: .init(
                            http1: .init(
                                additionalChannelHandlers: [RequestBodyDeadline(limit: TimeAmount(limits.requestBody))],
                                idleTimeout: TimeAmount(limits.idleConnection)),
                            ws: webSocket)
                    ) { head, channel, _ in
                        await shouldUpgrade(head, channel: channel)
                    },
                    limit: TimeAmount(limits.firstRequestHead), shutdownGrace: TimeAmount(limits.shutdownGrace))
            },
            configuration: .init(address: .hostname(host, port: port), serverName: "tandem"),
            services: services,
            onServerRunning: { channel in onListening(channel.localAddress?.port ?? port) },
            logger: hummingbirdLogger)
    }

    // MARK: - Routes

    func enroll(_ request: Request, _ log: inout Logger.Metadata) async throws -> Response {
        let body: EnrollRequest = try await decodeJSON(request, upTo: limits.maxEnrollBytes)
        guard let replica = try? ReplicaID(hex: body.replica) else { throw ServerError.badRequest("replica must be 32 hexadecimal digits.") }
        let name: String
        switch DisplayName.check(body.deviceName, what: "deviceName") {
        case .success(let checked): name = checked
        case .failure(let error): throw ServerError.badRequest(error.message)
        }
        let token = Secrets.newToken()
        let now = wallClock.nowMillis()
        let expectedRole = try body.role.map { text throws(ServerError) -> Role in
            guard let role = Role(rawValue: text) else { throw ServerError.badRequest("role must be patient, mentor, supervisor or staff.") }
            return role
        }
        let expectedMember = try body.member.map { text throws(ServerError) -> MemberID in
            guard let member = try? MemberID(hex: text) else { throw ServerError.badRequest("member must be 32 hexadecimal digits.") }
            return member
        }
        // Failures count per client address, so one address guessing codes never blocks
        // another's valid code; the total is only a backstop (PROTOCOL.md §9.2).
        let address = Self.peerAddress ?? "unknown"
        let window = now >= 60_000 ? now - 60_000 : 0
        let failures = try await storage.enrollFailures(address: address, sinceMillis: window)
        guard failures.fromAddress < limits.failedEnrollPerAddress, failures.total < limits.failedEnrollTotal else {
            throw ServerError.tooManyAttempts
        }
        let enrollment: Enrollment
        do {
            enrollment = try await storage.enroll(
                codeHash: Secrets.hashCode(body.code), replica: replica, deviceName: name, tokenHash: Secrets.hash(token),
                expectedRole: expectedRole, expectedMember: expectedMember, nowMillis: now)
        } catch ServerError.invalidCode {
            try await storage.recordEnrollFailure(address: address, atMillis: now, forgettingBefore: window)
            throw ServerError.invalidCode
        }
        log["member"] = "\(enrollment.member.prefix(8))"
        log["role"] = "\(enrollment.role)"
        return try json(EnrollResponse(
            token: token, member: enrollment.member, name: enrollment.name, role: enrollment.role,
            epoch: enrollment.epoch, serverTime: now))
    }

    func link(_ request: Request, _ log: inout Logger.Metadata) async throws -> Response {
        let principal = try await authenticate(request, &log)
        let code = Secrets.newCode()
        let now = wallClock.nowMillis()
        let expires = now + 15 * 60_000
        try await storage.link(
            principal, issuerToken: try bearerTokenHash(request), codeHash: Secrets.hashCode(code), nowMillis: now,
            expiresMillis: expires, maxUnused: limits.maxUnusedLinkCodes)
        return try json(LinkResponse(code: code, expires: expires, serverTime: now))
    }

    func devices(_ request: Request, _ log: inout Logger.Metadata) async throws -> Response {
        let principal = try await authenticate(request, &log)
        return try json(DevicesResponse(
            devices: try await storage.devices(of: principal.member), device: principal.device?.hex, serverTime: wallClock.nowMillis()))
    }

    func push(_ request: Request, _ log: inout Logger.Metadata) async throws -> Response {
        try checkVersion(request)
        let principal = try await authenticate(request, &log)
        let compressed = try await collect(request)
        let inflated: [UInt8]
        do {
            inflated = try Deflate.decompress(compressed, limit: limits.maxBatchBytes)
        } catch DeflateError.tooLarge {
            throw ServerError.tooLarge("A batch may inflate to at most \(limits.maxBatchBytes) bytes; send smaller batches.")
        } catch {
            throw ServerError.badRequest("The body is not a raw-deflated batch.")
        }
        let batch: ChangeBatch
        do {
            batch = try ChangeBatch(decoding: inflated, limits: .init(maxBytes: limits.maxBatchBytes, maxChanges: limits.maxChangesPerBatch))
        } catch .limitExceeded(let what, let limit) {
            throw ServerError.tooLarge("Too large: \(what) may be at most \(limit).")
        } catch {
            throw ServerError.badRequest(error.description)
        }
        let now = wallClock.nowMillis()
        let repush = request.headers[HTTPField.Name("Tandem-Repush")!] == "1"
        log["changes"] = "\(batch.changes.count)"
        if repush { log["repush"] = "1" }
        let outcome: PushOutcome
        do {
            outcome = try await storage.push(
                batch.changes, from: principal, repush: repush, nowMillis: now, maxSkewMillis: limits.maxSkewMillis,
                quotaBytes: limits.memberQuotaBytes)
        } catch let error as ServerError where error.refusals != nil {
            metrics.refused(error.refusals?.count ?? 0)
            log["refused"] = "\(error.refusals?.count ?? 0)"
            throw error
        }
        metrics.pushed(accepted: outcome.accepted, replayed: outcome.replayed)
        log["accepted"] = "\(outcome.accepted)"
        log["replayed"] = "\(outcome.replayed)"
        let advanced = outcome.ownChannel.map { step in
            [PushResponse.Advance(
                key: SubscriptionKey.own, from: Cursor(epoch: step.epoch, key: SubscriptionKey.own, sequence: step.from).encoded,
                to: Cursor(epoch: step.epoch, key: SubscriptionKey.own, sequence: step.to).encoded)]
        }
        return try json(PushResponse(
            accepted: outcome.accepted, replayed: outcome.replayed, advanced: advanced, mark: outcome.mark.map { "\($0)" },
            serverTime: wallClock.nowMillis()))
    }

    func pull(_ request: Request, _ log: inout Logger.Metadata) async throws -> Response {
        let started = ContinuousClock.now
        defer { metrics.pulled(in: ContinuousClock.now - started) }
        try checkVersion(request)
        // A token seen valid before is checked again inside the pull's own read.
        let hash = try bearerTokenHash(request)
        let check = knownTokens.principal(for: hash).map { TokenCheck(tokenHash: hash, principal: $0) }
        let principal: Principal
        if let check { principal = Self.logged(check.principal, &log) } else { principal = try await authenticate(request, &log) }
        let body: PullRequest
        let cursors: [String: Cursor]
        do {
            // Read by hand, not by `JSONDecoder`: a mentor's pull carries a cursor per patient.
            do { body = try PullRequest(json: try await collect(request)) } catch is JSONReaderError {
                throw ServerError.badRequest("The body is not the JSON this endpoint expects.")
            }
            cursors = try body.cursors.mapValues { text in
                do { return try Cursor(parsing: text) } catch { throw ServerError.badRequest("A cursor is malformed; pull again without it.") }
            }
        } catch {
            // A revoked token is told so before anything else, as at every other route.
            if check != nil {
                do { _ = try await authenticate(request, &log) } catch {
                    knownTokens.forget(hash)
                    throw error
                }
            }
            throw error
        }
        if let asked = body.limit, asked < 1 || asked > Int(Int32.max) { throw ServerError.badRequest("limit must be from 1 to 2147483647.") }
        let limit = min(body.limit ?? limits.pullPageSize, limits.maxPullPageSize)
        // The token check, the grants, the epoch, the heads and every page from one read.
        let snapshot: PullSnapshot
        do {
            snapshot = try await storage.pull(
                for: principal, policy: policy, memo: sharingMemo, limit: limit, maxBytes: limits.maxPullAnswerBytes, check: check
            ) { grants, epoch, heads in
                Self.starts(cursors, keys: grants.map { $0.key(for: principal) }, epoch: epoch, heads: heads).positions
            }
        } catch let error as ServerError where error == .unauthorized || error == .revoked {
            knownTokens.forget(hash)
            throw error
        }
        let grants = snapshot.grants
        let keys = snapshot.view.keys
        knownTokens.remember(principal, for: hash)
        let epoch = snapshot.epoch
        let epochChanged = Self.starts(cursors, keys: keys, epoch: epoch, heads: snapshot.heads).epochChanged
        // The accounting of disclosures: what this answer delivers of other members'
        // records is recorded, durably, before it is sent. If the answer then fails, the
        // entry stays: the accounting may tell of more than arrived, never of less.
        let deliveries = AccountingRules.deliveries(of: snapshot, to: principal)
        if !deliveries.isEmpty {
            let now = Int64(clamping: wallClock.nowMillis())
            do {
                _ = try await storage.account { try AccountingRules.record(deliveries, atMillis: now, in: $0) }
            } catch {
                throw ServerError.unavailable("The server cannot record this disclosure right now; try again later.")
            }
            log["disclosed"] = "\(deliveries.count)"
        }
        // A compact answer (§9.4) when the device holds the very subscriptions granted: the
        // list is left out, and so is the page of each subscription caught up at the cursor
        // the device sent. A caught-up answer then costs no more bytes per subscription.
        let compact = !epochChanged && body.subscriptions == snapshot.view.subscriptionDigest
        var subscriptions: [Subscription] = []
        var heads: [BinaryPull.Head.Page] = []
        var deflated: [[UInt8]] = []
        var sent = 0
        for (grant, (key, page)) in zip(grants, zip(keys, snapshot.pages)) {
            if compact, page.changes.isEmpty, !page.more, let held = cursors[key],
               held.perChannel, held.epoch == epoch, held.key == key, held.sequence == page.last {
                continue
            }
            if !compact {
                subscriptions.append(Subscription(
                    key: key, channel: "member:\(grant.channel.hex)", projection: grant.projection?.rawValue ?? "owner",
                    until: grant.untilMillis.map { UInt64(max(0, $0)) }))
            }
            sent += page.changes.count
            let bytes = try Self.deflated(page.changes)
            deflated.append(bytes)
            heads.append(.init(key: key, bytes: bytes.count, cursor: Cursor(epoch: epoch, key: key, sequence: page.last).encoded, more: page.more))
        }
        log["sent"] = "\(sent)"
        if epochChanged { log["epochChanged"] = "1" }
        // A device told `epochChanged` may re-push until its next pull in this epoch (§9.9).
        if let device = principal.device {
            if epochChanged, snapshot.repushEpoch != epoch {
                try await storage.setRepushWindow(device: device, epoch: epoch)
            } else if !epochChanged, snapshot.repushEpoch != nil {
                try await storage.setRepushWindow(device: device, epoch: nil)
            }
        }
        var head = BinaryPull.Head(
            epoch: epoch, epochChanged: epochChanged, subscriptions: compact ? nil : subscriptions, pages: heads, mark: snapshot.mark.map { "\($0)" },
            serverTime: wallClock.nowMillis())
        // The directory travels only when it differs from the one the device holds.
        let digest = snapshot.view.directoryDigest
        head.directoryDigest = digest
        if body.directory != digest { head.directory = snapshot.directory }
        head.accounting = snapshot.accounting
        if let accept = request.headers[.accept], Self.names(accept, BinaryPull.mediaType) {
            var headers = HTTPFields()
            headers[.contentType] = BinaryPull.mediaType
            headers[HTTPField.Name("Tandem-Server-Time")!] = String(head.serverTime)
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: try BinaryPull.encode(head, deflated: deflated))))
        }
        let pages = zip(heads, deflated).map { page, bytes in
            PullResponse.PullPage(key: page.key, changes: Data(bytes).base64EncodedString(), cursor: page.cursor, more: page.more)
        }
        var answer = PullResponse(
            epoch: epoch, epochChanged: epochChanged, subscriptions: head.subscriptions, pages: pages, mark: head.mark, serverTime: head.serverTime)
        answer.directoryDigest = head.directoryDigest
        answer.directory = head.directory
        answer.accounting = head.accounting
        return try json(answer)
    }

    /// Whether a header's value holds `text` (compared as UTF-8 bytes: `String.contains`
    /// goes through Foundation's locale-aware search, on every pull).
    static func names(_ value: String, _ text: String) -> Bool {
        let needle = Array(text.utf8)
        let haystack = Array(value.utf8)
        guard !needle.isEmpty, haystack.count >= needle.count else { return needle.isEmpty }
        return (0...(haystack.count - needle.count)).contains { start in haystack[start..<(start + needle.count)].elementsEqual(needle) }
    }

    /// Where each subscription's page starts: its cursor's position, or zero for every one
    /// of them when any cursor is from another epoch or beyond its channel's head (a
    /// restored server). A `t1` cursor, from before channels were numbered apart, starts
    /// its subscription at zero (PROTOCOL.md §9.4).
    static func starts(_ cursors: [String: Cursor], keys: [String], epoch: String, heads: [Int64]) -> (positions: [Int64], epochChanged: Bool) {
        // Keys name distinct subscriptions (a key is its channel, record and projection).
        let changed = cursors.values.contains { $0.epoch != epoch } || zip(keys, heads).contains { key, head in
            cursors[key].map { $0.perChannel && $0.sequence > head } ?? false
        }
        return (keys.map { key in
            guard !changed, let cursor = cursors[key], cursor.perChannel else { return 0 }
            return cursor.sequence
        }, changed)
    }

    /// A page's changes as the answer carries them: the batch encoding, deflated.
    static func deflated(_ changes: [Change]) throws -> [UInt8] {
        if changes.isEmpty, let empty = emptyPage { return empty }
        return try Deflate.compress(ChangeBatch(changes).encoded())
    }

    /// A caught-up pull's pages are all empty: their bytes are made once.
    static let emptyPage: [UInt8]? = try? Deflate.compress(ChangeBatch([]).encoded())

    // MARK: - Plumbing

    /// The hash of the request's bearer token (tokens are stored and compared only hashed).
    func bearerTokenHash(_ request: Request) throws -> [UInt8] {
        try Self.bearerTokenHash(request.headers[.authorization])
    }

    /// The hash of the token in an `Authorization: Bearer` header's value.
    static func bearerTokenHash(_ header: String?) throws -> [UInt8] {
        guard let header, header.hasPrefix("Bearer ") else { throw ServerError.unauthorized }
        let token = header.dropFirst("Bearer ".count)
        guard token.utf8.count <= 128 else { throw ServerError.unauthorized }
        return Secrets.hash(String(token))
    }

    func authenticate(_ request: Request, _ log: inout Logger.Metadata) async throws -> Principal {
        try await authenticate(tokenHash: try bearerTokenHash(request), &log)
    }

    /// The principal of a token (its hash), with failed sign-ins throttled (§9.13).
    func authenticate(tokenHash hash: [UInt8], _ log: inout Logger.Metadata) async throws -> Principal {
        let now = wallClock.nowMillis()
        if let wait = await authThrottle.retryAfter(token: hash, now: now) { throw ServerError.throttled(retryAfter: wait) }
        let principal: Principal
        do {
            principal = try await storage.authenticate(tokenHash: hash)
        } catch let error as ServerError where error == .unauthorized || error == .revoked {
            let address = Self.clientAddress
            if let address, let wait = await authThrottle.retryAfter(address: address, now: now) {
                throw ServerError.throttled(retryAfter: wait)
            }
            await authThrottle.failed(token: hash, address: address, now: now)
            throw error
        }
        return Self.logged(principal, &log)
    }

    /// Names the principal in the request's log line by short id prefixes: enough to
    /// follow one device through the log, no names.
    static func logged(_ principal: Principal, _ log: inout Logger.Metadata) -> Principal {
        log["member"] = "\(principal.member.hex.prefix(8))"
        if let device = principal.device { log["device"] = "\(device.hex.prefix(8))" }
        return principal
    }

    func checkVersion(_ request: Request) throws {
        try Self.checkVersion(request.headers[HTTPField.Name(WireProtocol.header)!])
    }

    static func checkVersion(_ header: String?) throws {
        let version = header ?? Self.protocolVersion
        guard version == Self.protocolVersion else { throw ServerError.unsupportedVersion(found: String(version.prefix(16))) }
    }

    /// The request's whole body, at most `maxBytes` (the route's cap; `maxRequestBytes` by
    /// default). Tells apart a body too large (413), one too slow (408), a client that went
    /// away mid-body (`disconnected`, logged as such) and malformed framing (400).
    func collect(_ request: Request, upTo maxBytes: Int? = nil) async throws -> [UInt8] {
        let cap = maxBytes ?? limits.maxRequestBytes
        do {
            let buffer = try await request.body.collect(upTo: cap)
            return Array(buffer.readableBytesView)
        } catch is NIOTooManyBytesError {
            throw ServerError.tooLarge("A request body here may be at most \(cap) bytes.")
        } catch is RequestBodyTimeout {
            throw ServerError.requestTimeout(seconds: Int(limits.requestBody.components.seconds))
        } catch let error as HTTPParserError where error == .invalidEOFState {
            throw ServerError.disconnected
        } catch is HTTPParserError {
            throw ServerError.badRequest("The request body's framing is malformed.")
        } catch {
            // The connection reset or closed, or the request was cancelled.
            throw ServerError.disconnected
        }
    }

    func decodeJSON<T: Decodable>(_ request: Request, upTo maxBytes: Int? = nil) async throws -> T {
        let bytes = try await collect(request, upTo: maxBytes)
        do { return try JSONDecoder().decode(T.self, from: Data(bytes)) } catch {
            throw ServerError.badRequest("The body is not the JSON this endpoint expects.")
        }
    }

    func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        let data = try JSONEncoder().encode(value)
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        headers[HTTPField.Name("Tandem-Server-Time")!] = String(wallClock.nowMillis())
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// Runs a route: maps domain errors to a status and a JSON body, counts the request and
    /// logs one line for it. The metadata a route adds is ids and counts, never content.
    func handle(
        _ route: String, _ request: Request, _ context: TandemRequestContext, _ body: (inout Logger.Metadata) async throws -> Response
    ) async -> Response {
        let address = context.clientAddress(of: request, trustedProxy: limits.trustedProxy)
        let peer = context.peerAddress(of: request, trustedProxy: limits.trustedProxy)
        return await Self.$clientAddress.withValue(address) {
            await Self.$peerAddress.withValue(peer) { await run(route, body) }
        }
    }

    /// The client's address for throttling: known only behind a configured trusted proxy.
    @TaskLocal static var clientAddress: String?

    /// The client's address with or without a proxy (`TandemRequestContext.peerAddress`).
    @TaskLocal static var peerAddress: String?

    private func run(_ route: String, _ body: (inout Logger.Metadata) async throws -> Response) async -> Response {
        let started = ContinuousClock.now
        metrics.requestStarted()
        defer { metrics.requestEnded() }
        var log: Logger.Metadata = ["route": "\(route)"]
        let response: Response
        do {
            response = try await body(&log)
        } catch let error as ServerError {
            log["error"] = "\(error.code)"
            let answer = ErrorResponse(error: error.code, message: error.description, refused: error.refusals, serverTime: wallClock.nowMillis())
            var answered = (try? json(answer, status: HTTPResponse.Status(code: error.status))) ?? Response(status: .internalServerError)
            if case .throttled(let seconds) = error { answered.headers[.retryAfter] = String(seconds) }
            if case .requestTimeout = error { answered.headers[.connection] = "close" }
            if case .methodNotAllowed(let allowed) = error { answered.headers[.allow] = allowed.joined(separator: ", ") }
            if case .upgradeRequired = error { answered.headers[.upgrade] = "websocket" }
            response = answered
        } catch {
            // The type only: an error's text could quote what it failed on.
            log["error"] = "internal"
            log["errorType"] = "\(String(reflecting: type(of: error)))"
            let answer = ErrorResponse(error: "internal", message: "The server failed; try again later.", refused: nil, serverTime: wallClock.nowMillis())
            response = (try? json(answer, status: .internalServerError)) ?? Response(status: .internalServerError)
        }
        record(route, status: response.status.code, since: started, log)
        return response
    }

    /// Counts and times a request under its route, and logs its one line.
    func record(_ route: String, status: Int, since started: ContinuousClock.Instant, _ metadata: Logger.Metadata) {
        var log = metadata
        let elapsed = ContinuousClock.now - started
        let nanoseconds = elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000
        metrics.request(route: route, status: status, nanoseconds: nanoseconds)
        log["status"] = "\(status)"
        log["ms"] = "\(String(format: "%.1f", Double(nanoseconds) / 1e6))"
        if log["error"] == "\(ServerError.disconnected.code)" { log["status"] = "disconnected" }
        let level: Logger.Level = status >= 500 ? .error : .info
        logger.log(level: level, "request", metadata: log)
    }

    /// The JSON error body every refusal carries.
    func errorBody(_ error: ServerError) throws -> Data {
        try JSONEncoder().encode(ErrorResponse(error: error.code, message: error.description, refused: error.refusals, serverTime: wallClock.nowMillis()))
    }
}
