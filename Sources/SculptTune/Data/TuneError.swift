import Foundation

/// A problem with the user's data, configuration or run directory. The description is one
/// line naming what and where, so the CLI can print it as is.
public struct TuneError: Error, CustomStringConvertible, Sendable, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// `value` as a case of `T`, or an error naming the flag and every choice
/// ("--s2ft-sides must be output or both, got \"input\"").
public func choice<T: RawRepresentable & CaseIterable>(_ value: String, of flag: String, as type: T.Type = T.self) throws -> T where T.RawValue == String {
    if let v = T(rawValue: value) { return v }
    let names = T.allCases.map(\.rawValue)
    let listed = names.count > 1 ? names.dropLast().joined(separator: ", ") + " or " + names.last! : names.joined()
    throw TuneError("--\(flag) must be \(listed), got \"\(value)\"")
}
