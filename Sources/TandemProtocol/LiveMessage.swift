import Foundation

/// What the server says on a live connection (PROTOCOL.md §9.12), as JSON text frames.
public struct LiveMessage: Codable, Sendable, Equatable {
    /// `hello` once connected (pull now: something may have changed while away), then
    /// `advanced` whenever a subscription's channel got new changes.
    public var type: String
    /// The subscription keys concerned.
    public var subscriptions: [String]
    /// For `advanced`: each concerned subscription's cursor at the commit told of. A device
    /// whose cursors already are these holds everything the notice is about (its own push,
    /// PROTOCOL.md §9.3) and need not pull.
    public var cursors: [String: String]?
    public var serverTime: UInt64

    public init(type: String, subscriptions: [String], cursors: [String: String]? = nil, serverTime: UInt64) {
        self.type = type
        self.subscriptions = subscriptions
        self.cursors = cursors
        self.serverTime = serverTime
    }

    /// A text frame as a device reads it: the JSON of a message, at most 64 KiB, or nil
    /// for anything else (a device ignores frames it does not understand). Fuzzed
    /// (`Fuzz/LiveMessageParser.swift`).
    public init?(frame text: String) {
        guard text.utf8.count <= 1 << 16,
              let message = try? JSONDecoder().decode(LiveMessage.self, from: Data(text.utf8))
        else { return nil }
        self = message
    }
}

/// Close codes of live connections (PROTOCOL.md §9.12).
public enum LiveCloseCode {
    /// The device was revoked, or its token is no longer known: enroll again.
    public static let revoked: UInt16 = 4401
    /// The device has too many live connections open.
    public static let tooMany: UInt16 = 4429
    /// The server is shutting down: reconnect later.
    public static let goingAway: UInt16 = 1001
}
