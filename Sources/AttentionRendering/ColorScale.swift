/// A perceptually ordered colour scale (viridis: dark purple → blue → green → yellow) for weights in [0, 1].
public enum ColorScale {
    /// Viridis at nine evenly spaced points; values between are interpolated linearly.
    private static let stops: [(Double, Double, Double)] = [
        (68, 1, 84), (72, 40, 120), (62, 73, 137), (49, 104, 142), (38, 130, 142),
        (31, 158, 137), (53, 183, 121), (109, 205, 89), (180, 222, 44), (253, 231, 37),
    ]

    /// The colour of `t` (clamped to [0, 1], NaN as 0) as 8-bit red, green, blue.
    public static func rgb(_ t: Double) -> (red: Int, green: Int, blue: Int) {
        let x = min(max(t.isNaN ? 0 : t, 0), 1) * Double(stops.count - 1)
        let i = min(Int(x), stops.count - 2)
        let f = x - Double(i)
        let (a, b) = (stops[i], stops[i + 1])
        func mix(_ u: Double, _ v: Double) -> Int { Int((u + (v - u) * f).rounded()) }
        return (mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
    }

    /// `#rrggbb` for SVG.
    public static func hex(_ t: Double) -> String {
        let (r, g, b) = rgb(t)
        return "#" + [r, g, b].map { String($0, radix: 16).leftPadded(to: 2, with: "0") }.joined()
    }

    /// The nearest colour of the xterm 256-colour cube (for terminals without 24-bit colour).
    public static func xterm256(_ t: Double) -> Int {
        let (r, g, b) = rgb(t)
        func level(_ c: Int) -> Int { c < 48 ? 0 : c < 115 ? 1 : (c - 35) / 40 }
        return 16 + 36 * level(r) + 6 * level(g) + level(b)
    }
}

extension String {
    /// The string with `pad` added on the left up to `width` characters.
    public func leftPadded(to width: Int, with pad: Character = " ") -> String {
        String(repeating: pad, count: max(0, width - count)) + self
    }

    /// The string with spaces added on the right up to `width` characters.
    public func rightPadded(to width: Int) -> String {
        self + String(repeating: " ", count: max(0, width - count))
    }
}
