import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization
import TandemCompression
import TandemCore
import TandemClient
import TandemProtocol
import TandemServer
import TandemStore
import TandemTestSupport
import Testing

/// The HTTP API against the real server process: the OpenAPI document matches what the
/// server answers, and bad requests get their documented status and a message.
@Suite("HTTP API", .serialized)
struct HTTPAPITests {
    struct Answer {
        var status: Int
        var body: Data
        var serverTime: String?
        var allow: String? = nil
        var error: ErrorResponse? { try? JSONDecoder().decode(ErrorResponse.self, from: body) }
    }

    func send(_ server: LiveServer, _ method: HTTPMethod, _ path: String, token: String? = nil, body: [UInt8] = [], headers: [String: String] = [:]) async throws -> Answer {
        var request = HTTPClientRequest(url: server.url + path)
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if !body.isEmpty { request.body = .bytes(ByteBuffer(bytes: body)) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let collected = try await response.body.collect(upTo: 16 << 20)
        return Answer(
            status: Int(response.status.code), body: Data(collected.readableBytesView), serverTime: response.headers.first(name: "Tandem-Server-Time"),
            allow: response.headers.first(name: "Allow"))
    }

    /// Paths, methods and statuses documented in Protocol/openapi.yaml.
    static func documented() throws -> [(path: String, method: String, statuses: Set<Int>)] {
        let url = FixtureFiles.directory("..").appendingPathComponent("Protocol/openapi.yaml").standardizedFileURL
        let lines = try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map(String.init)
        var result: [(String, String, Set<Int>)] = []
        var inPaths = false
        for line in lines {
            if line == "paths:" { inPaths = true; continue }
            guard inPaths else { continue }
            if line.hasPrefix("  /"), line.hasSuffix(":") { result.append((String(line.dropFirst(2).dropLast()), "", [])) }
            else if line.hasPrefix("    "), !line.hasPrefix("     "), line.hasSuffix(":"), !result.isEmpty {
                result[result.count - 1].1 = line.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: ":", with: "")
            } else if let match = line.range(of: #"^        "(\d{3})":"#, options: .regularExpression), !result.isEmpty {
                result[result.count - 1].2.insert(Int(line[match].filter(\.isNumber)) ?? 0)
            }
        }
        return result
    }

    @Test func everyDocumentedEndpoint_answers_withADocumentedStatus() async throws {
        let dir = try TemporaryDirectory()
        let db = dir.path("center.sqlite")
        _ = try await TandemExecutable.run(["admin", "init", "--db", db])
        let server = try await LiveServer(dbPath: db)
        let endpoints = try Self.documented()
        #expect(endpoints.map(\.path).sorted() == ["/health", "/metrics", "/v1/audit", "/v1/devices", "/v1/emergency/journal", "/v1/enroll", "/v1/link", "/v1/live", "/v1/outcomes", "/v1/pull", "/v1/push"])
        for endpoint in endpoints {
            let answer = try await send(server, endpoint.method == "get" ? .GET : .POST, endpoint.path, body: Array("{}".utf8))
            #expect(endpoint.statuses.contains(answer.status), "\(endpoint.method) \(endpoint.path) answered \(answer.status)")
            #expect(answer.serverTime != nil, "\(endpoint.path) carries the server's time")
        }
        // Unknown paths and methods a route does not have answer like every error.
        let missing = try await send(server, .GET, "/v1/nothing-here")
        #expect(missing.status == 404 && missing.error?.error == "not-found" && missing.serverTime != nil)
        for (method, path, allowed) in [(HTTPMethod.RAW(value: "TRACE"), "/health", "GET"), (.DELETE, "/v1/push", "POST"), (.POST, "/health", "GET")] {
            let wrong = try await send(server, method, path)
            #expect(wrong.status == 405 && wrong.error?.error == "method-not-allowed", "\(method) \(path)")
            #expect(wrong.allow == allowed && wrong.serverTime != nil, "\(method) \(path)")
        }
    }

    @Test func metricsCountRequestsAndChanges_andLogsNeverCarryContentOrTokens() async throws {
        let dir = try TemporaryDirectory()
        let db = dir.path("center.sqlite")
        _ = try await TandemExecutable.run(["admin", "init", "--db", db])
        let log = dir.path("server.log")
        let server = try await LiveServer(dbPath: db, logPath: log)
        let code = try await TandemExecutable.run(["admin", "invite", "--db", db, "--role", "patient", "--name", "Pat Example"]).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let now = SystemWallClock().nowMillis()
        let store = try ReplicaStore.create(at: dir.path("phone.sqlite"), name: "phone", role: .patient, wallMillis: now)
        _ = try await Syncer.enroll(store: store, server: server.url, code: code, deviceName: "phone", role: nil, allowInsecure: false)
        let secret = "LOGCANARY-craving-after-the-meeting"
        var edit = JournalEdit()
        edit.mood = 2
        edit.text = secret
        edit.addTags = ["LOGCANARYTAG"]
        let (_, changes) = try store.write(try edit.recordEdit(), to: nil, clock: SystemWallClock())
        let seen = Locked<[Syncer.Progress]>([])
        _ = try await Syncer(store: store).sync { progress in seen.withLock { $0.append(progress) } }
        let steps = seen.withLock { $0 }
        #expect(steps.first == Syncer.Progress(sent: 0, toSend: changes.count, received: 0))
        // Its first push into the member's empty channel does not come back.
        #expect(steps.last == Syncer.Progress(sent: changes.count, toSend: changes.count, received: 0))
        _ = try await Syncer(store: store).sync()
        _ = try await send(server, .POST, "/v1/pull", token: "not-a-token", body: Array("{}".utf8))

        let metrics = try await send(server, .GET, "/metrics")
        #expect(metrics.status == 200)
        let text = String(decoding: metrics.body, as: UTF8.self)
        #expect(text.contains("tandem_changes_accepted_total \(changes.count)\n"))
        #expect(text.contains(#"tandem_http_requests_total{route="/v1/push",status="200"} 1"#))
        #expect(text.contains(#"tandem_http_requests_total{route="/v1/pull",status="200"} 2"#))
        #expect(text.contains(#"tandem_http_requests_total{route="/v1/pull",status="401"} 1"#))
        #expect(text.contains("tandem_pull_duration_seconds_count 3"))
        #expect(text.contains("tandem_live_connections 0"))
        #expect(!text.contains("LOGCANARY") && !text.contains("Pat Example"))

        await server.stop()
        let written = try String(contentsOfFile: log, encoding: .utf8)
        let token = try #require(try store.binding()?.token)
        #expect(written.contains("route=/v1/push") && written.contains("accepted=\(changes.count)"))
        #expect(written.contains("status=401"))
        for forbidden in [secret, "LOGCANARYTAG", "logcanarytag", "Pat Example", token, code] {
            #expect(!written.contains(forbidden), "the log must not carry \(forbidden.prefix(4))…")
        }
    }

    @Test func badRequests_getTheirStatusAndAMessage_andStoreNothing() async throws {
        let dir = try TemporaryDirectory()
        let db = dir.path("center.sqlite")
        _ = try await TandemExecutable.run(["admin", "init", "--db", db])
        let code = try await TandemExecutable.run(["admin", "invite", "--db", db, "--role", "patient", "--name", "Sam"]).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let server = try await LiveServer(dbPath: db)
        let replica = ReplicaID.random()
        let enroll = try JSONEncoder().encode(EnrollRequest(code: code, replica: replica.hex, deviceName: "phone"))
        let enrolled = try await send(server, .POST, "/v1/enroll", body: Array(enroll))
        #expect(enrolled.status == 200)
        let token = try JSONDecoder().decode(EnrollResponse.self, from: enrolled.body).token

        func change(_ line: String) throws -> Change { try Notation.change(line.replacingOccurrences(of: "@ME", with: "@\(replica.hex)")) }
        let now = UInt64(Date().timeIntervalSince1970 * 1000)
        let valid = try [change("\(now).0@ME create 0123456789abcdef0123456789abcdef - = {collection: \"journal\"}")]
        let validBatch = try Deflate.compress(ChangeBatch(valid).encoded())

        // Another member's record, created by their own device.
        let otherCode = try await TandemExecutable.run(["admin", "invite", "--db", db, "--role", "patient", "--name", "Alex"]).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let otherReplica = ReplicaID.random()
        let otherEnroll = try JSONEncoder().encode(EnrollRequest(code: otherCode, replica: otherReplica.hex, deviceName: "theirs"))
        let otherToken = try JSONDecoder().decode(EnrollResponse.self, from: try await send(server, .POST, "/v1/enroll", body: Array(otherEnroll)).body).token
        let theirRecord = "fedcba9876543210fedcba9876543210"
        let theirs = try Notation.change("\(now).0@\(otherReplica.hex) create \(theirRecord) - = {collection: \"journal\"}")
        #expect(try await send(server, .POST, "/v1/push", token: otherToken, body: try Deflate.compress(ChangeBatch([theirs]).encoded())).status == 200)
        let validBytes = ChangeBatch(valid).encoded()
        let tooMany = try (0..<10_001).map { index in try change("\(now).\(index)@ME lww 0123456789abcdef0123456789abcdef mood = 5") }

        let cases: [(String, String?, [UInt8], [String: String], Int, String)] = [
            ("truncated batch", token, try Deflate.compress(Array(validBytes.dropLast(3))), [:], 400, "bad-request"),
            ("truncated deflate stream", token, Array(validBatch.dropLast(2)), [:], 400, "bad-request"),
            ("non-canonical encoding", token, try Deflate.compress(Array(try Data(contentsOf: FixtureFiles.directory("corrupt").appendingPathComponent("non-minimal-varint.bin")))), [:], 400, "bad-request"),
            ("10,001 changes", token, try Deflate.compress(ChangeBatch(tooMany).encoded()), [:], 413, "too-large"),
            ("a token too long to be one", String(repeating: "a", count: 300), validBatch, [:], 401, "unauthorized"),
            ("another member's record", token, try Deflate.compress(ChangeBatch([try change("\(now).0@ME lww \(theirRecord) mood = 3")]).encoded()), [:], 409, "refused"),
            ("no token", nil, validBatch, [:], 401, "unauthorized"),
            ("unknown token", "f00d", validBatch, [:], 401, "unauthorized"),
            ("not deflate", token, Array("hello".utf8), [:], 400, "bad-request"),
            ("deflated garbage", token, try Deflate.compress(Array("hello".utf8)), [:], 400, "bad-request"),
            ("wrong protocol version", token, validBatch, ["Tandem-Protocol": "2"], 400, "unsupported-version"),
            ("deflate bomb", token, try Deflate.compress([UInt8](repeating: 0, count: 32 << 20)), [:], 413, "too-large"),
            ("another device's replica", token, try Deflate.compress(ChangeBatch([try Notation.change("\(now).0@other create r - = {collection: \"journal\"}")]).encoded()), [:], 403, "refused"),
            ("a note by a patient", token, try Deflate.compress(ChangeBatch([try change("\(now).0@ME create n - = {collection: \"note\", patient: 0x\(otherReplica.hex)}")]).encoded()), [:], 403, "refused"),
            ("a member record", token, try Deflate.compress(ChangeBatch([try change("\(now).0@ME create m - = {collection: \"member\"}")]).encoded()), [:], 409, "refused"),
            ("mood 11", token, try Deflate.compress(ChangeBatch(valid + [try change("\(now).1@ME lww 0123456789abcdef0123456789abcdef mood = 11")]).encoded()), [:], 409, "refused"),
            ("a day in the future", token, try Deflate.compress(ChangeBatch([try change("\(now + 86_400_000).0@ME create r2 - = {collection: \"journal\"}")]).encoded()), [:], 409, "refused"),
        ]
        for (name, token, body, headers, status, code) in cases {
            let answer = try await send(server, .POST, "/v1/push", token: token, body: body, headers: headers)
            #expect(answer.status == status, "\(name)")
            #expect(answer.error?.error == code, "\(name)")
            #expect(answer.error?.message.isEmpty == false, "\(name)")
        }
        // Too new and too old clients are each told who must update.
        let tooNew = try await send(server, .POST, "/v1/push", token: token, body: validBatch, headers: ["Tandem-Protocol": "2"])
        #expect(tooNew.error?.message.contains("the center must update its server") == true)
        let tooOld = try await send(server, .POST, "/v1/pull", token: token, body: Array("{}".utf8), headers: ["Tandem-Protocol": "0"])
        #expect(tooOld.status == 400)
        #expect(tooOld.error?.message.contains("update tandem on this device") == true)
        let mood = try await send(server, .POST, "/v1/push", token: token, body: cases.first { $0.0 == "mood 11" }!.2)
        #expect(mood.error?.refused?.first?.reason.contains("mood") == true)
        #expect(mood.error?.refused?.first?.permanent == true)
        let skew = try await send(server, .POST, "/v1/push", token: token, body: cases.first { $0.0 == "a day in the future" }!.2)
        #expect(skew.error?.refused?.first?.reason == "clock-skew")
        #expect(skew.error?.refused?.first?.permanent == false)

        // Nothing was stored by any of them.
        let pull = try JSONEncoder().encode(PullRequest(cursors: [:]))
        let pulled = try JSONDecoder().decode(PullResponse.self, from: try await send(server, .POST, "/v1/pull", token: token, body: Array(pull)).body)
        #expect(pulled.subscriptions?.map(\.key) == ["own"])
        let firstPage = try #require(pulled.pages.first)
        let packed = try #require(Data(base64Encoded: firstPage.changes))
        #expect(try ChangeBatch(decoding: try Deflate.decompress(Array(packed), limit: 1 << 20)).changes.isEmpty)

        // The valid batch is accepted once, then acknowledged as a replay.
        let first = try await send(server, .POST, "/v1/push", token: token, body: validBatch)
        #expect(try JSONDecoder().decode(PushResponse.self, from: first.body).accepted == 1)
        let again = try await send(server, .POST, "/v1/push", token: token, body: validBatch)
        #expect(try JSONDecoder().decode(PushResponse.self, from: again.body).replayed == 1)

        let badCursor = try JSONEncoder().encode(PullRequest(cursors: ["own": "t1.zz.own.5"]))
        let refusedCursor = try await send(server, .POST, "/v1/pull", token: token, body: Array(badCursor))
        #expect(refusedCursor.status == 400)
        #expect(refusedCursor.error?.message.contains("pull again without it") == true)
        let usedCode = try await send(server, .POST, "/v1/enroll", body: Array(enroll))
        #expect(usedCode.status == 403)

        // A malformed Authorization header, and a revoked device's token.
        #expect(try await send(server, .POST, "/v1/push", body: validBatch, headers: ["Authorization": "Basic c2FtOnNhbQ=="]).status == 401)
        let devices = try await TandemExecutable.run(["admin", "devices", "--db", db]).stdout
        let phoneID = try #require(devices.split(separator: "\n").first { $0.contains("phone") }?.split(separator: " ").first)
        _ = try await TandemExecutable.run(["admin", "revoke-device", String(phoneID), "--db", db])
        let revoked = try await send(server, .POST, "/v1/push", token: token, body: validBatch)
        #expect(revoked.status == 401 && revoked.error?.error == "revoked")
        #expect(revoked.error?.message.contains("enroll") == true)
    }
}

/// Failed sign-ins are slowed down per token, and per address behind a trusted proxy,
/// without ever refusing a valid token.
@Suite("Authentication throttling")
struct AuthThrottleTests {
    func status(_ url: String, token: String, forwardedFor: String? = nil) async throws -> (Int, String?) {
        var request = HTTPClientRequest(url: url + "/v1/devices")
        request.method = .GET
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        if let forwardedFor { request.headers.add(name: "X-Forwarded-For", value: forwardedFor) }
        // 30 s, as every other request of these tests: under ThreadSanitizer with the whole
        // suite running, 10 s was seen to pass twice (the statuses are what is tested).
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        _ = try await response.body.collect(upTo: 1 << 16)
        return (Int(response.status.code), response.headers.first(name: "Retry-After"))
    }

    @Test(arguments: ServerStoreKind.allCases)
    func repeatedFailures_get429WithRetryAfter_andValidTokensStillPass(storeKind: ServerStoreKind) async throws {
        let dir = try TemporaryDirectory()
        let storage = try await storeKind.create(in: dir)
        let now = SystemWallClock().nowMillis()
        _ = try await storage.initialize(staffName: "Admin", nowMillis: now)
        var limits = SyncServer.Limits()
        limits.failedAuthPerToken = 3
        limits.failedAuthPerAddress = 5
        limits.trustedProxy = "127.0.0.1"
        // The server's clock stands still unless moved: the counts are per minute, and
        // under ThreadSanitizer eleven requests can take longer than that.
        let clock = ManualWallClock(millis: now)
        let server = try await InProcessServer(storage: storage, limits: limits, wallClock: clock)
        let code = try await storage.invite(role: .patient, name: "Pat", nowMillis: now)
        let enrollment = try await storage.enroll(
            codeHash: Secrets.hashCode(code), replica: .random(), deviceName: "phone", tokenHash: Secrets.hash("good-token"),
            expectedRole: nil, expectedMember: nil, nowMillis: now)
        #expect(!enrollment.member.isEmpty)

        // One wrong token, again and again: 401 three times, then 429 with Retry-After.
        for _ in 0..<3 { #expect(try await status(server.url, token: "stale-token").0 == 401) }
        let (throttled, retryAfter) = try await status(server.url, token: "stale-token")
        #expect(throttled == 429)
        #expect(retryAfter.flatMap(Int.init).map { (1...60).contains($0) } == true)
        #expect(try await status(server.url, token: "good-token").0 == 200, "a valid token is not slowed down")

        // Behind the trusted proxy, one address trying many tokens is slowed down too, but
        // a valid token from that same address still passes.
        for attempt in 0..<5 { #expect(try await status(server.url, token: "guess-\(attempt)", forwardedFor: "10.0.0.7").0 == 401) }
        #expect(try await status(server.url, token: "guess-5", forwardedFor: "10.0.0.7").0 == 429)
        #expect(try await status(server.url, token: "guess-6", forwardedFor: "10.0.0.8").0 == 401, "another address is not affected")
        #expect(try await status(server.url, token: "good-token", forwardedFor: "10.0.0.7").0 == 200)

        // The slowing down ends with its minute: both the token and the address get 401 again.
        clock.advance(byMillis: 60_001)
        #expect(try await status(server.url, token: "stale-token").0 == 401)
        #expect(try await status(server.url, token: "guess-7", forwardedFor: "10.0.0.7").0 == 401)
    }
}

/// A pull by a token the server has seen valid skips a lookup of its own, but the pull's
/// read checks the token again: a revoked device's very next pull is refused, even one
/// whose body is malformed, and the member's other devices go on.
@Suite("Known tokens")
struct KnownTokenTests {
    func pull(_ server: InProcessServer, token: String, body: [UInt8]) async throws -> (status: Int, error: String?) {
        var request = HTTPClientRequest(url: server.url + "/v1/pull")
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        request.body = .bytes(ByteBuffer(bytes: body))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let answer = try await response.body.collect(upTo: 16 << 20)
        return (Int(response.status.code), try? JSONDecoder().decode(ErrorResponse.self, from: Data(answer.readableBytesView)).error)
    }

    @Test(arguments: ServerStoreKind.allCases)
    func aRevokedDevicesNextPull_isRefused_thoughItsTokenWasKnown(storeKind: ServerStoreKind) async throws {
        let (dir, server) = try await InProcessServer.center("known-tokens", store: storeKind)
        let phone = try await server.device(dir, "phone")
        let tablet = try await server.device(dir, "tablet", linkedTo: phone)
        let laptop = try await server.device(dir, "laptop", linkedTo: phone)
        _ = try phone.write(try moodEntry(4), to: nil, clock: SystemWallClock())
        for store in [phone, tablet, laptop] { _ = try await Syncer(store: store).sync() }
        let valid = Array(try JSONEncoder().encode(PullRequest(cursors: [:])))
        let malformed = Array("{not json".utf8)
        let phoneToken = try #require(try phone.binding()?.token)
        let tabletToken = try #require(try tablet.binding()?.token)
        // Pulled before: the server knows both tokens now; a bad body is still a 400.
        #expect(try await pull(server, token: tabletToken, body: malformed).status == 400)
        for token in [phoneToken, tabletToken] { #expect(try await pull(server, token: token, body: valid).status == 200) }

        let member = try #require(try phone.binding()?.member)
        for name in ["phone", "tablet"] {
            let device = try #require(try await server.storage.devices(of: member).first { $0.name == name })
            try await server.storage.revokeDevice(try RecordID(hex: device.id))
        }
        // The first pulls after the revocation, with tokens the server knew; then again.
        for _ in 0..<2 {
            #expect(try await pull(server, token: phoneToken, body: valid) == (401, "revoked"))
            #expect(try await pull(server, token: tabletToken, body: malformed) == (401, "revoked"))
        }
        await #expect(throws: SyncError.self) { try await Syncer(store: phone).sync() }

        // The member's other device is not affected.
        _ = try laptop.write(try moodEntry(6), to: nil, clock: SystemWallClock())
        #expect(try await Syncer(store: laptop).sync().pushed > 0)
        #expect(try await pull(server, token: try #require(try laptop.binding()?.token), body: valid).status == 200)
    }
}
