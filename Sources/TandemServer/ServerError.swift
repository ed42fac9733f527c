public import TandemCore
public import TandemProtocol

/// Everything the server refuses, with the HTTP status it maps to at the route boundary.
/// Messages carry ids and rules, never health content.
public enum ServerError: Error, Equatable, Sendable, CustomStringConvertible {
    case unauthorized
    case revoked
    case forbidden(String)
    case badRequest(String)
    case tooLarge(String)
    case unsupportedVersion(found: String)
    case invalidCode
    case tooManyAttempts
    case tooManyConnections(Int)
    case tooManyCodes(Int)
    case notFound
    case upgradeRequired
    case methodNotAllowed(allowed: [String])
    case overQuota(bytes: Int64)
    case requestTimeout(seconds: Int)
    /// The client went away before its request was whole; nobody reads the answer.
    case disconnected
    case throttled(retryAfter: Int)
    case conflict(String)
    case refused([Refusal], serverTime: UInt64)
    /// A batch refused because the pusher may not write some of it (another member's
    /// record, a role's rule): answered 403, with the refusals listed as for `refused`.
    case forbiddenChanges([Refusal], serverTime: UInt64)
    case unavailable(String)

    public var status: Int {
        switch self {
        case .unauthorized: 401
        case .revoked: 401
        case .forbidden: 403
        case .badRequest: 400
        case .tooLarge: 413
        case .unsupportedVersion: 400
        case .invalidCode: 403
        case .tooManyAttempts: 429
        case .tooManyConnections: 429
        case .tooManyCodes: 429
        case .notFound: 404
        case .upgradeRequired: 426
        case .methodNotAllowed: 405
        case .overQuota: 413
        case .requestTimeout: 408
        case .disconnected: 400
        case .throttled: 429
        case .conflict: 409
        case .refused: 409
        case .forbiddenChanges: 403
        case .unavailable: 503
        }
    }

    /// The refused changes of a refused batch (nil: not a refusal of changes).
    public var refusals: [Refusal]? {
        switch self {
        case .refused(let list, _), .forbiddenChanges(let list, _): list
        default: nil
        }
    }

    /// The wire's name for this error (`ErrorCode`).
    public var errorCode: ErrorCode {
        switch self {
        case .unauthorized: .unauthorized
        case .revoked: .revoked
        case .forbidden: .forbidden
        case .badRequest: .badRequest
        case .tooLarge: .tooLarge
        case .unsupportedVersion: .unsupportedVersion
        case .invalidCode: .invalidCode
        case .tooManyAttempts: .tooManyAttempts
        case .tooManyConnections: .tooManyConnections
        case .tooManyCodes: .tooManyCodes
        case .notFound: .notFound
        case .upgradeRequired: .upgradeRequired
        case .methodNotAllowed: .methodNotAllowed
        case .overQuota: .overQuota
        case .requestTimeout: .requestTimeout
        case .disconnected: .disconnected
        case .throttled: .throttled
        case .conflict: .conflict
        case .refused, .forbiddenChanges: .refused
        case .unavailable: .unavailable
        }
    }

    public var code: String { errorCode.rawValue }

    public var description: String {
        switch self {
        case .unauthorized: "Missing or unknown token: enroll this device again."
        case .revoked: "This device was revoked by the center; enroll it again to keep syncing."
        case .forbidden(let why): why
        case .badRequest(let why): why
        case .tooLarge(let why): why
        case .unsupportedVersion(let found):
            if let version = Int(found), version > 1 {
                "This device speaks Tandem protocol \(version), newer than this server's protocol 1: the center must update its server (or use an older tandem)."
            } else {
                "This device's Tandem (protocol \(found)) is too old for this server, which speaks protocol 1: update tandem on this device."
            }
        case .invalidCode: "The code is unknown, used or expired; ask for a new one."
        case .tooManyAttempts: "Too many failed enrollments from here; wait a minute and try again."
        case .tooManyConnections(let limit): "This device has \(limit) live connections open already; close one first."
        case .requestTimeout(let seconds): "The request's body did not arrive within \(seconds) s; send it again."
        case .disconnected: "The connection closed before the request was whole."
        case .overQuota(let bytes):
            "This member's data on the server has reached its quota of \(bytes >> 20) MiB; nothing of the batch was stored. Ask the center to raise it."
        case .notFound: "No such endpoint; Protocol/openapi.yaml lists them."
        case .upgradeRequired: "GET /v1/live is a WebSocket: send an upgrade request."
        case .methodNotAllowed(let allowed): "This endpoint answers \(allowed.joined(separator: ", ")) only."
        case .tooManyCodes(let limit):
            "This member has \(limit) unused link codes already; use one, or wait until one expires (15 minutes)."
        case .throttled(let seconds): "Too many failed sign-ins; try again in \(seconds) s (Retry-After)."
        case .conflict(let why): why
        case .refused(let refusals, _), .forbiddenChanges(let refusals, _): "The server refused \(refusals.count) change(s); nothing of the batch was stored."
        case .unavailable(let why): why
        }
    }
}
