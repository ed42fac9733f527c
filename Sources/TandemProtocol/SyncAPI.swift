import Foundation

/// JSON bodies of the HTTP API (Protocol/openapi.yaml, PROTOCOL.md §9).

/// The protocol version every request names in its `Tandem-Protocol` header (PROTOCOL.md
/// §9.1); a server refuses other versions with a message saying who must update.
public enum WireProtocol {
    public static let version = "1"
    public static let header = "Tandem-Protocol"
}

/// `POST /v1/enroll` request.
public struct EnrollRequest: Codable, Sendable {
    public var code: String
    public var replica: String
    public var deviceName: String
    /// The role the device's home was made for; a code for another role is refused
    /// without being used up.
    public var role: String?
    /// The member the home is already bound to, if any; a code for another member is
    /// refused without being used up.
    public var member: String?

    public init(code: String, replica: String, deviceName: String, role: String? = nil, member: String? = nil) {
        self.code = code
        self.replica = replica
        self.deviceName = deviceName
        self.role = role
        self.member = member
    }
}

/// `POST /v1/enroll` answer: the device's token, shown once.
public struct EnrollResponse: Codable, Sendable {
    public var token: String
    public var member: String
    public var name: String
    public var role: String
    public var epoch: String
    public var serverTime: UInt64

    public init(token: String, member: String, name: String, role: String, epoch: String, serverTime: UInt64) {
        self.token = token
        self.member = member
        self.name = name
        self.role = role
        self.epoch = epoch
        self.serverTime = serverTime
    }
}

/// `POST /v1/link` answer.
public struct LinkResponse: Codable, Sendable {
    public var code: String
    public var expires: UInt64
    public var serverTime: UInt64

    public init(code: String, expires: UInt64, serverTime: UInt64) {
        self.code = code
        self.expires = expires
        self.serverTime = serverTime
    }
}

/// `POST /v1/push` answer.
public struct PushResponse: Codable, Sendable {
    public var accepted: Int
    public var replayed: Int
    /// Cursors this push moves: a device whose cursor for `key` is `from` may set it to
    /// `to` (what lies between is what it just pushed), so it does not pull its own
    /// changes back. Absent when the push added nothing to the device's own channel.
    public var advanced: [Advance]?
    /// The pushing replica's mark after this push, `WALL.COUNTER`: the highest id the server
    /// accepted from it. The device never stamps at or below it (PROTOCOL.md §9.3).
    public var mark: String?
    public var serverTime: UInt64

    public init(accepted: Int, replayed: Int, advanced: [Advance]? = nil, mark: String? = nil, serverTime: UInt64) {
        self.accepted = accepted
        self.replayed = replayed
        self.advanced = advanced
        self.mark = mark
        self.serverTime = serverTime
    }

    public struct Advance: Codable, Sendable, Equatable {
        public var key: String
        public var from: String
        public var to: String

        public init(key: String, from: String, to: String) {
            self.key = key
            self.from = from
            self.to = to
        }
    }
}

/// `POST /v1/pull` request: a cursor per subscription the device holds (none at first).
public struct PullRequest: Codable, Sendable {
    public var cursors: [String: String]
    public var limit: Int?
    /// The digest of the directory the device holds (`directoryDigest` of an earlier
    /// answer): the answer then carries the directory only when it changed.
    public var directory: String?
    /// The digest of the subscriptions the device holds (`SubscriptionDigest`): when the
    /// server's list is the same, the answer is compact (PROTOCOL.md §9.4): it leaves the
    /// list out, and the page of every subscription that is caught up at the cursor sent.
    public var subscriptions: String?
    public init(cursors: [String: String], limit: Int? = nil, directory: String? = nil, subscriptions: String? = nil) {
        self.cursors = cursors
        self.limit = limit
        self.directory = directory
        self.subscriptions = subscriptions
    }
}

/// A member the device deals with: their id, name and role (PROTOCOL.md §7.2).
public struct DirectoryMember: Codable, Sendable, Equatable, Hashable {
    /// 32 hex digits.
    public var member: String
    public var name: String
    public var role: String

    public init(member: String, name: String, role: String) {
        self.member = member
        self.name = name
        self.role = role
    }

    /// The digest an answer names a directory by: the first 32 hex digits of the SHA-256
    /// of its lines `member TAB name TAB role LF`, in the answer's order.
    public static func lines(_ members: [DirectoryMember]) -> [UInt8] {
        Array(members.map { "\($0.member)\t\($0.name)\t\($0.role)\n" }.joined().utf8)
    }
}

/// One active subscription: a channel seen through a projection.
public struct Subscription: Codable, Sendable, Equatable {
    public var key: String
    public var channel: String
    public var projection: String
    /// When the subscription ends by itself (ms since 1970): the expiry of the consents
    /// behind it. The device purges what only it carries at that time, online or not.
    public var until: UInt64?

    public init(key: String, channel: String, projection: String, until: UInt64? = nil) {
        self.key = key
        self.channel = channel
        self.projection = projection
        self.until = until
    }
}

/// `POST /v1/pull` answer.
public struct PullResponse: Codable, Sendable {
    public var epoch: String
    /// True when a cursor the device sent was from another epoch (a restore): the device
    /// forgets its cursors and reads again from zero.
    public var epochChanged: Bool
    /// Every subscription the device holds now; data that none of them carries is purged.
    /// Absent from a compact answer: the device holds this list already.
    public var subscriptions: [Subscription]?
    /// One page per subscription (a compact answer leaves out the caught-up ones).
    public var pages: [PullPage]
    /// The pulling replica's mark, as in `PushResponse.mark`.
    public var mark: String?
    public var serverTime: UInt64
    /// The digest of the caller's directory now, and the directory itself when the
    /// request named another digest (PROTOCOL.md §7.2).
    public var directoryDigest: String?
    public var directory: [DirectoryMember]?
    /// The head of the caller's own chain of disclosures, when it has entries (§9.16).
    public var accounting: AccountingHead?

    public init(epoch: String, epochChanged: Bool, subscriptions: [Subscription]?, pages: [PullPage], mark: String? = nil, serverTime: UInt64) {
        self.epoch = epoch
        self.epochChanged = epochChanged
        self.subscriptions = subscriptions
        self.pages = pages
        self.mark = mark
        self.serverTime = serverTime
    }

    /// A page of one subscription.
    public struct PullPage: Codable, Sendable {
        public var key: String
        /// Base64 of a raw-deflated batch (PROTOCOL.md §4): current state since the cursor.
        public var changes: String
        public var cursor: String
        public var more: Bool

        public init(key: String, changes: String, cursor: String, more: Bool) {
            self.key = key
            self.changes = changes
            self.cursor = cursor
            self.more = more
        }
    }

    /// Whether any subscription has another page.
    public var more: Bool { pages.contains(where: \.more) }
}

/// The binary form of a `POST /v1/pull` answer (PROTOCOL.md §9.4), which a device asks for
/// with `Accept: application/vnd.tandem.pull`: a 4-byte big-endian length, that many bytes
/// of JSON (`PullHead`: the answer with each page's byte count instead of its changes),
/// then each page's raw-deflated batch, in the head's order. No base64: a third fewer
/// bytes than the JSON answer, and nothing to decode twice.
public enum BinaryPull {
    public static let mediaType = "application/vnd.tandem.pull"

    /// A pull answer without its pages' changes.
    public struct Head: Codable, Sendable, Equatable {
        public var epoch: String
        public var epochChanged: Bool
        /// As in `PullResponse`: absent from a compact answer.
        public var subscriptions: [Subscription]?
        public var pages: [Page]
        /// The pulling replica's mark, as in `PushResponse.mark`.
        public var mark: String?
        public var serverTime: UInt64
        /// As in `PullResponse`.
        public var directoryDigest: String?
        public var directory: [DirectoryMember]?
        /// As in `PullResponse`.
        public var accounting: AccountingHead?

        /// Whether any subscription has another page.
        public var more: Bool { pages.contains(where: \.more) }

        public init(epoch: String, epochChanged: Bool, subscriptions: [Subscription]?, pages: [Page], mark: String? = nil, serverTime: UInt64) {
            self.epoch = epoch
            self.epochChanged = epochChanged
            self.subscriptions = subscriptions
            self.pages = pages
            self.mark = mark
            self.serverTime = serverTime
        }

        public struct Page: Codable, Sendable, Equatable {
            public var key: String
            /// The length of this page's raw-deflated batch in the body.
            public var bytes: Int
            public var cursor: String
            public var more: Bool

            public init(key: String, bytes: Int, cursor: String, more: Bool) {
                self.key = key
                self.bytes = bytes
                self.cursor = cursor
                self.more = more
            }
        }
    }

    public static func encode(_ head: Head, deflated: [[UInt8]]) throws -> [UInt8] {
        let json = head.json()
        var body: [UInt8] = []
        body.reserveCapacity(4 + json.count + deflated.reduce(0) { $0 + $1.count })
        let count = UInt32(json.count)
        body += [UInt8(count >> 24), UInt8(count >> 16 & 0xFF), UInt8(count >> 8 & 0xFF), UInt8(count & 0xFF)]
        body += json
        for page in deflated { body += page }
        return body
    }

    /// - Throws: `BinaryPullError` when the lengths do not add up or the head is not JSON.
    public static func decode(_ body: [UInt8]) throws(BinaryPullError) -> (head: Head, deflated: [[UInt8]]) {
        guard body.count >= 4 else { throw .malformed }
        let count = Int(body[0]) << 24 | Int(body[1]) << 16 | Int(body[2]) << 8 | Int(body[3])
        guard count <= body.count - 4 else { throw .malformed }
        guard let head = try? JSONDecoder().decode(Head.self, from: Data(body[4..<(4 + count)])) else { throw .malformed }
        var offset = 4 + count
        var deflated: [[UInt8]] = []
        for page in head.pages {
            guard page.bytes >= 0, page.bytes <= body.count - offset else { throw .malformed }
            deflated.append(Array(body[offset..<(offset + page.bytes)]))
            offset += page.bytes
        }
        guard offset == body.count else { throw .malformed }
        return (head, deflated)
    }
}

public enum BinaryPullError: Error, Equatable {
    case malformed
}

/// Every error answer.
public struct ErrorResponse: Codable, Sendable {
    public var error: String
    public var message: String
    public var refused: [Refusal]?
    public var serverTime: UInt64

    public init(error: String, message: String, refused: [Refusal]? = nil, serverTime: UInt64) {
        self.error = error
        self.message = message
        self.refused = refused
        self.serverTime = serverTime
    }
}

/// `GET /v1/devices` answer: the calling member's devices.
public struct DevicesResponse: Codable, Sendable {
    public var devices: [DeviceInfo]
    /// The id of the device that asked (absent for a token of no device).
    public var device: String?
    public var serverTime: UInt64

    public init(devices: [DeviceInfo], device: String? = nil, serverTime: UInt64) {
        self.devices = devices
        self.device = device
        self.serverTime = serverTime
    }
}

/// One refused change of a push (PROTOCOL.md §9.3).
public struct Refusal: Codable, Equatable, Sendable {
    public var change: String
    public var reason: String
    public var permanent: Bool
    /// For `clock-skew` and `id-reused` refusals: the replica's mark, `WALL.COUNTER`, if the
    /// server holds any.
    public var mark: String?

    public init(change: String, reason: String, permanent: Bool, mark: String? = nil) {
        self.change = change
        self.reason = reason
        self.permanent = permanent
        self.mark = mark
    }
}

/// The reasons of transient refusals a device acts on (PROTOCOL.md §9.3); both carry the
/// replica's mark, and the device re-stamps its unacknowledged changes above it.
public enum RefusalReason {
    /// Stamped more than the server's bound ahead of its clock.
    public static let clockSkew = "clock-skew"
    /// Another change was accepted under this id: a new write at an old id.
    public static let idReused = "id-reused"
    /// (Permanent.) No record of that id that is the pusher's: a missing record and another
    /// member's are answered alike, so a guessed id reveals nothing.
    public static let unknownRecord = "unknown record: its create must come first"
}

/// A device as staff and its member see it.
public struct DeviceInfo: Codable, Sendable, Equatable {
    public var id: String
    public var member: String
    public var name: String
    public var enrolled: UInt64
    public var revoked: Bool

    public init(id: String, member: String, name: String, enrolled: UInt64, revoked: Bool) {
        self.id = id
        self.member = member
        self.name = name
        self.enrolled = enrolled
        self.revoked = revoked
    }
}
