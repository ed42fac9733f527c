// libFuzzer target: a live connection's text frame as a device reads it (PROTOCOL.md
// §9.12), `LiveMessage(frame:)`. Built and run by scripts/fuzz. Any text is either ignored
// or parses to a message that survives its own encoding; a crash is a finding.
import Foundation
import TandemProtocol

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzLiveMessage(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    guard let message = LiveMessage(frame: text) else { return 0 }
    let encoded = String(decoding: (try? JSONEncoder().encode(message)) ?? Data(), as: UTF8.self)
    precondition(LiveMessage(frame: encoded) == message, "a message does not survive its own encoding")
    return 0
}
