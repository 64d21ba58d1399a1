import Foundation

/// A problem with the user's data, configuration or run directory. The description is one
/// line naming what and where, so the CLI can print it as is.
public struct TuneError: Error, CustomStringConvertible, Sendable, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
