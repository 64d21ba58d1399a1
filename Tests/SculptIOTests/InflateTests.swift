import Foundation
import XCTest
import SculptIO
import SculptTestSupport

// Fixtures were made with Python's gzip/zlib at development time, e.g.
//   gzip.compress(data, compresslevel=9, mtime=0)                  (gz*)
//   zlib.compressobj(9, zlib.DEFLATED, -15, 9, strategy) raw DEFLATE (raw*)
// from the deterministic inputs rebuilt below (`text10k`, `lcgBytes`):
//   gzEmpty b'', gzHello b'hello', gzText text10k (dynamic blocks), gzStored text10k[:800]
//   at level 0 (stored blocks), gzRandom lcgBytes(1000, 42), rawFixed text10k[:2000] with
//   Z_FIXED, gzMulti gzip(b'hello ') + gzip(b'world'), gzFlags a hand-built header with
//   FTEXT|FHCRC|FEXTRA|FNAME|FCOMMENT around b'hello, header flags', rawSkewed 60000 bytes
//   with geometric symbol and distance distributions (code lengths above the 10-bit
//   literal and 8-bit distance root tables, so subtables are exercised).
enum Fixtures {
    static let gzEmpty = fixture("""
        H4sIAAAAAAACAwMAAAAAAAAAAAA=
        """)
    static let gzHello = fixture("""
        H4sIAAAAAAACA8tIzcnJBwCGphA2BQAAAA==
        """)
    static let gzText = fixture("""
        H4sIAAAAAAACA6WZWZIUMQxE/zlFHcGyLVmC4DADNDDQTDMDPSynZ2nJB8j8rlDYLj9ryTzfP5yO9vL4/vF0PF7v334+3jxdfjwc
        7y8/j0/XL1+/HZfn09P/z+e737+Od5cPr47nu/P19Lq9OP8LFihYbsEdCp634AEFxy14Ytu2W7RC0V1v0QZFj1x7Yf8sz+1QtOUv
        Dyja87YFA21kNEZaz60LyNrKcIy21TMc462iMd5G/XcMOKvVMeIiaRcMuVHXjjG3Mj11jDnJs3cMOs3Ndwy6yKfeMehmIt8x6KKS
        M0bdrLNj1EVtHqNO694x6jyjMegskR8YdD1zzcCg89z8wKDTKqsYdD1fzMCg86xPA4POktkB1ta6OAw6qdVB6PK5D5C6DJ8YdTOx
        mRh1I+99YtRJrY5RV0cHM12mqolB50nNxKBb1Ypi0K1aHYNu1dmDCtdGbV6F+nXaqYvTQWGjk2FWlXowatRz1UUlC3UqVWlQidIa
        laZNqCJhnSpRNqgCaZMqz6ZUc2BGtSa2qMbInGrLLJiecDWqIV1CtcOrU834GtQosCY1iCylxqBl1BC2FjUCLqcG0BXU+OuNGr5d
        qNHfOyU8+GBUD5+U5OJKCT5ulNzki9G63CmhzYNT+RolMYZQ+mZ0SlyNQSm7MRlVOZQRtMMYLT0WI+OHU2sHc25pjfnp0oS6cmkc
        cdIGBby0Sb03aUo9d2lGyvpUrpPmnLDfglP2QVtiS/uoMVHhXI0V0JnY6j5oTWx5HzUntq1jVH8lwrV3AvoTuvcfVHMroEMxt68l
        VGsvnZssBDQpYu9/UnOVgDaFV7hRM6V0bqQV1KjY+w9qoBfUq6jng5oVVbwGp6YIaFeUmCOgXyF7faWkLAEdC9vxnJAnoGcx9v0H
        JWMK6FrU8UHXoiRcmZyCLKBvUQK2gM7F2usrJd8L6l3s+EXu38n/F9z9gf7F5gc0MApf5VwzAR2M/XpBC2NnD9DE2NkLdDF29lTO
        sBXQx9jVAzQy/lavPysr+ud6JwAA
        """)
    static let gzStored = fixture("""
        H4sIAAAAAAAEAwEgA9/8bGluZSAwOiB0aGUgcXVpY2sgYnJvd24gZm94IGp1bXBzIG92ZXIgdGhlIGxhenkgZG9nOyB2YWx1ZT0w
        CmxpbmUgMTogdGhlIHF1aWNrIGJyb3duIGZveCBqdW1wcyBvdmVyIHRoZSBsYXp5IGRvZzsgdmFsdWU9MQpsaW5lIDI6IHRoZSBx
        dWljayBicm93biBmb3gganVtcHMgb3ZlciB0aGUgbGF6eSBkb2c7IHZhbHVlPTQKbGluZSAzOiB0aGUgcXVpY2sgYnJvd24gZm94
        IGp1bXBzIG92ZXIgdGhlIGxhenkgZG9nOyB2YWx1ZT05CmxpbmUgNDogdGhlIHF1aWNrIGJyb3duIGZveCBqdW1wcyBvdmVyIHRo
        ZSBsYXp5IGRvZzsgdmFsdWU9MTYKbGluZSA1OiB0aGUgcXVpY2sgYnJvd24gZm94IGp1bXBzIG92ZXIgdGhlIGxhenkgZG9nOyB2
        YWx1ZT0yNQpsaW5lIDY6IHRoZSBxdWljayBicm93biBmb3gganVtcHMgb3ZlciB0aGUgbGF6eSBkb2c7IHZhbHVlPTM2CmxpbmUg
        NzogdGhlIHF1aWNrIGJyb3duIGZveCBqdW1wcyBvdmVyIHRoZSBsYXp5IGRvZzsgdmFsdWU9NDkKbGluZSA4OiB0aGUgcXVpY2sg
        YnJvd24gZm94IGp1bXBzIG92ZXIgdGhlIGxhenkgZG9nOyB2YWx1ZT02NApsaW5lIDk6IHRoZSBxdWljayBicm93biBmb3gganVt
        cHMgb3ZlciB0aGUgbGF6eSBkb2c7IHZhbHVlPTgxCmxpbmUgMTA6IHRoZSBxdWljayBicm93biBmb3gganVtcHMgb3ZlciB0aGUg
        bGF6eSBkb2c7IHZhbHVlPTMKbGluZSAxMTogdGhlIHF1aWNrIGJyb3duIGZveCBqdW1wcyBvdmVyIHRoZSBsYXp5IGRvZzsgdmFs
        dWU9MjQKbGluZSAxMjogdGhlIHF1aWNrIGJyb3duIGZveCBqdW1wcyBvdmVyIHRoZSBsYXp5IGRvZzsgdmFsdWVuRHeZIAMAAA==
        """)
    static let gzRandom = fixture("""
        H4sIAAAAAAACAwHoAxf8iYmldSBFbYRhgVQS7tS1MEULt+OZ1I6wbi936feVcbov5bzzuRITk3iOqRjudeSJVnrbP4CSkXdvYu+Z
        s2mDRoft+ySrp19pAC0SKOUjhl5TIsK8umOVMps0l0DiF+X8CbqY4u2bCl5ud8gbyndVCbcapDBC4VM4aryptHs3TjIsZM0DeIfK
        yzyEAseVCQfh93u5dQ6ihOFVE1vPd2F4QmgC0GFDA1gG4mz6Bj9xVj6NXTliFj7ehdNR52jNLBmCNq7a00ambGnXRuevv0b4efHX
        XNBTThp9XY2DV3Ux6kwNfSQyegm+S5MqAZoOIabomgNZlbxq8B9q4Gh0aAij+GaK5FTWxAYEjzJ/nyOZGeUA92qLSSoYxXJizpee
        SP3cuOtTE1Nv/O1CdJuX90cHx5zLxYjzJUrG7ivtmQ6KrlJ8ualG6KFYXCUJjFmBwynm5pikZrL0PXpWUv1RsGZvsCkMHsWO89Kr
        rwiJvLqlN5tUdj38fC+rOiDwNpd9c/hQN/vqaDz8ITFZi8uamITpPGF9yiNMbktcxxzQQ2xKAYkfn0UI61b/Rpqoi8sW+fcjgsSB
        sRhI1TrB8AMtdYNCtFkQZnuSlyND6nf/JSqbGKcxZJuA2FUAK4aBBi6StXInW2WHmylXRH7CEWCCzAQGIOZ1UWeEL4aHjuoTHLh5
        Szygt98/qTAcUZmO5rn1ynjmGA7ZPhVsHaZSQWHR4WeESp0epT8JuGET6AbJopyFJlE/SGzdg6V+4UqfJyQEF9SpzLETdEKHzBwm
        kEEVuc/HutQ7Qh3FcWKP7Ryf7hog9bGliV+0SzcWxMxFhupFPhV4Tv+T1dNqfwezz/8FGhudup++w9kdXvVkUT3Q+jhqxuMmq5fc
        piaOpBXRgUP9n4YdMmh1uq+UIlIuj1cbie2UU9NYhQw1PUe7ijpbf7pGZjHXnq4v+XNV6NpVUycwXTUhzh2XPXlIYqWLIsaRSqb2
        TgV5pxD0kUZ9zaT89SZTYqOOEwRFad+Xu4+g+lGkV+/MNRCWNpeHrWmAl4leYmbTM4tSBP7+mp5UDs0wl8DzBwPefLR42+xCBWpE
        NDjdL0AoPvLOPi8QL8iBwJ48lxD3THnVOa23Wr2nBMQzXY5GYtoeCpzf9NoCb2CSfRcgRnf9fTNdryRm1qnFLsCkbUPvoaSzpLlG
        kM+hIlsE/1QvP3BirVhWGatEYiWcEeVzvaDWRwUfohzKTbc/M23PKmEH/KFcYniOv8EqnSNg+JdNLM+AF0Zzbx82CDAx71ybdYf6
        sliz73w7BFql3uO10otN5sYCTwU2KEHrbG7Cf54Cd8ALuIKS27fESJ8IrUroAwAA
        """)
    static let rawFixed = fixture("""
        y8nMS1UwsFIoyUhVKCzNTM5WSCrKL89TSMuvUMgqzS0oVsgvSy0CS+ckVlUqpOSnWyuUJeaUptoacOWANBuSpdkQotmILM0mEM3G
        ZGm2hGg2Ic/ZZhDdpmTpNjKF6DYjS7cx1G5z8sIM6m8LsnSbQYPckizdFtDYNiQvoRlDdZOX0oygTjckM62ZQ7WTl9rMjaDayUtv
        MN3kpTdjWLiTl+DMYLaTl+IsoandkLwkZwyLdvLSnDm0eDIiL80ZQv1uRF6iM4U63oi8RGcJzepG5CU6E2iSNyIv0VnCCmfyUp0J
        zO/kpTpLmOPJS3WmsHgnL9VZQHWTl+jMoEnemLxEZwQta4zJS3QWQMcDAA==
        """)
    static let gzMulti = fixture("""
        H4sIAAAAAAACA8tIzcnJVwAA9vmB7QYAAAAfiwgAAAAAAAIDK88vykkBAEMRdzoFAAAA
        """)
    static let gzFlags = fixture("""
        H4sIHwAAAAAAAwQAQUIAAG5hbWUudHh0AGEgY29tbWVudAAIwstIzcnJ11HISE1MSS1SSMtJTC8GACnh05gTAAAA
        """)
    static let rawSkewed = fixture("""
        7X2Neuu6qu2zCdCP07nOPe//NNcSDMBJ2qZt2pnOk/XtPZvYErYlIxgMUEqtQlK4UGHa/ymt7P/R/kGo6H/7YW0wP+1nZJ5mYW5+
        oBDX/f97q9mPraPUKWd1Xn/W33WSaf632uAS88T+Z+wNV6/5lTYWqnplnlcla6tS9KZ2EbWu4/unbV5mit/vYsnXy3Lb/3SZJ4oI
        nmz/NqXSevD9qWrpS8x+hrWnPoaODE9B+1PvH8ccAn1y5nV/85673V8MHE05Oqzzj93+/If3/6Tg67zD+WmUSnP8tFdpc5jqGt95
        kROv0WIdKe3MOiCkA0t2capMovfffNrW+Mm6c3sykv0q+43QFEzlJUZ2Nuc0/1xqzP+aicpV2A8UajwHrK4HxcAx20xK0QltmHDx
        +Wef/2ZXIu3V1vjVeXPrynKYf71E05Fd06X3zqSv4C6k20jPwWtrSHlN03xgvb82R2IOh04vxcieqva0yamzQV1vQp0DwWzzv0us
        6/7mPdtEUwwcSV96NA/Uw/zvL2HlmH9ZE7Duf/9f0177W6svJ+ubzqpIdembDZvE/HcdP72FQToS9tr5/Oud25PtwzvV4USnpP+C
        +W9p/mvW/770v84XWA/MqZpfVP+rD1xTTa76ltar+l/P9H+qYei/7Hco7+l/259BR3IfGtJXcBdi+r8uy7Lf4/7/OU211Wv63+a1
        Jev//9hj1KT/bem/VJv/XeIahTLv2Saa6o363y70X6aM6vovrC/nevN2+bwvEO/pfyNT7E5DNe0w//U0P3e7v+r6PzVJ3tJ/OdN/
        2Yc06/9cDLquTxAf+t9MEQUT3q/ovxz1X9b4iet/Pcx/NbW5rv91zqm4/statmeretD//fVcEzku9F/koP9i9/c/+4skR/3v8pb+
        T7Mz9LAc5v+lzuXT57/qUmb6P68+55HlqP9N7et8eMx/j/mXrP9ym/7vN/VfP9r/erv9r9n+b1fsf/+4/a8H+1/3O+zv2//RYP/r
        K/a/Thv6nv3vPrLv2P+a7f+A/a9ftv91vixh/+scppc1vnMQ6u32v7v9r7fb//qW/rcz/e+7S5X1vy77P962//Ut+1+P+l/X+LU3
        7X99y/5X1/+Xfeiu2f/6qv2v/aD/jVTV9ulu7cz+9zftf3X7387tf3/V/tdq9r9es//tFftfs/7X2/T/v6kO1cz7mf2vaf571v+1
        Eu8z4/a/Hux/94GrYp7cmp52Vf/bpf0f2f639+1/dfu/GyDSV3C3g6b/Xe3/HNK6pqnV0zX9rxf2v9pjjKT/Ve3/ZvNfYf9bsv/t
        Rv2v1+1/v7D/ze1/fVf/K+x/1fs/s/9tGTx7st1ph/7XT9j/em7/q9n/eq7/Ndn/Zpr3Ufs/DvPf37T/7TX738/tfysKsW6z//XS
        /tc37f8yO9fsf+092/+mS1my//WK/a9m/1vMf/2y/T/H/y+32//+Dfi/Hex/+yj+b6/Y/z5dqvfxf7vN/rer+L992f63I/7vR/zf
        PoP/x+32v30F/2+34P/+lv3fjvrfb8D/21v2vyX836/a/9Or9r/dC/+3z+D/P83sf/8I/m9Z/9sH8H9bFvrC/m+v4f92jv9Pr+D/
        8TP4f9yC/8eEI4r/x1X83y/sf7uC//sR/4+v4P/+cfzf3tX/Afvf9P7P8f8yeO0C/49P2P9+bv+b2f92rv/9HP+3h8L/7Vb73y7t
        f3vT/ndF8pf2v53j/35m//sV+98v8X/7sv1v7T74v12x/+0e+L+9b//buAv+b5/C/+2e+L9d4P9mb96H8H+7O/7vZ/rfuF/B/+3e
        +L/fA/+3j+P/dtD/bvzEPt2jn9n/diP+7+f2v30S/4874v92I/5vl/i/v4b/2zn+12VLgfiF/o9L+9+y/R8fwf+7ASJ9BalD/9s5
        /h+1fQz/t0v8387x/0j2v38N/7cL+9/vh//7Af+f/gL+75/E/+0w/+1N+99fs//t3P73v4X/W8v2f3wI/2/fif//Mv/fD/a/fxT/
        9zf4/+19/L/dZv/7Vfw/vmz/+5v8f/9m/r//W/z/9gX+v98L/49P8f+nz/D/W9b//gH83y28fyv/v/0f4f/74/H//Xb+f+j9n+P/
        ZfDG9/D/m9n/8S7/vz0U/u+32v9+af+3d/n/fs3+9zvx/6cv2/8+7oP/+xX7P+6B/8f79r/fh/8/fQr/93vi/36B//sa3+1j+P/l
        2/n/cZX/7w/J//eP4/+XS/5/u87/j8/y/9sD8P/9Rvw/PsD/j6/y//3T/P9ugKif8f/bJf/fP4b/+yX+79/I/29P/v+a/e+H+f/v
        c/z//3sY/n+cHpT/77fb/9Pv4f/Hb+T/T3fg//sP8f/9Fvx/esv+96P+jxvwf7+V/9+u2v/+oPx/B/+//U3+v9/M//dX8H//Gfzf
        b8H/M4a+Kf7vV/H/uIn/H0f837+C/1++g//vn+P/+yfs/5+b+f/xf5X/Hzfz/+PM/m9X7P948v+v8P/9yf9/M/8/Lvj/8RP8/3gI
        /n8E/99Pn+T/x734//4Y/P+4mf/f9C0dV/W/v8P/90/y/+NV/r9/B//fk/3/c2/+f9wP/48D/u9/Af+ffoD/P93M/4/H4P/7h/B/
        /4f5/9PB/o+P4v/xI/X/f76p/v/Pm/z/+Gb+fzzr/zGy47fX/28fwP/DwvvP+v+j/R+Px/+fPlL//3IN/49n/f8F/t9utf/jM/X/
        2zX7Px6m/n/cqf5//MX6/+1v1v9v98T/pwv8P35T/f/2kPz/eNb/v6L/4xHr/09fqv9/eb/+f3wM/2+X+H886/9/mv8/Pev/f4T/
        H8/6/3+p/n/7If5/fLn+f3y8/n98rf5/PCj/Px6i/n/czP+PV/D/9jP4/88t+H+L+v/tfvX/28PV/58+x/+fnvX/z/r/38v/n578
        /7P+/0fq/09/vf5/+6fq/7d3+P/T3ev/t+/g/7dfWf8/nvX/j8H///kQ/h/P+v/P1P+P9/H/+Er9//as/38k/n88Qv3/9in+f3yG
        /x8/Vf8/nvX/v6D+f3uj/n/7Hv5/mP3f3uX/xz9T/z/+bv3/+Hr9//Z99f8v98D/24/V/4/Hrf8fH8P/49v5/+3frv8fl/z/uM7/
        b5/l/8cvqv/fPsD/b3+v/n9cqf8fv63+fzz5//fr/8fn+P/xMPz/Nn5//f/4Pfz/9hv5//Gv1f+PD9T/b/es/x+/s/5/POv/71n/
        P96q/99u4v+3O9b/j19e/z9u5v+3/6v8/8vN/P92Zv/HFft/evL/z/r/v8T/bxf8/+kn+P/tIfj/l1T/Pz7J/7/8Y/X/f27m/3Xb
        EvrvR+v/t79X/z/uzf9v98P/p79e/z9+gP8fN/P//z3r/x+L/x8H+3/6KP7/70fq/8c31f+PN/n/7Zv5/+1Z/4+R3X57/f/4AP7f
        LLz/rP8/2v/t8fj/8ZH6/3EN/2/P+v8L/D9utf/bZ+r/xzX7vz1M/f92p/r/P3+x/n/8zfr/cU/8Py7w//ab6v/HQ/L/27P+/xX9
        3x6x/n98qf5/vF//v30M/49L/P/yrP//af5/POv/f4T/3571//9S/f/4If7/5cv1/38+Xv9/+lr9//ag/P/2EPX/p5v5/+0V/D9+
        Bv+PW/D/iPr/cb/6//Fw9f/jc/z/eNb/P+v/fy//P578/7P+/0fq/8dfr/8fj1b/r1LmmmWHRLXXBaous0MWlS7rfvwObYmbttpm
        dREgu2RerhCv5RBz4pchHbYifpxNr/WDdZ2y3KsOSbR0wEbKxgSL0Wqrg4Z00+wV2rJoD9GhCGovzG3gBcLJ1ilbc1hHUaWyqYEd
        MWdDD2i/CFyswbIP8wVdTWsSTxBHOt5EeDl0Gdb3ZnWaErSxGXa0MUEui0o0YcgkqBuakT3afMvXmHUdxXUO31b2vWA1JEcEukxg
        lV/8gXXGUZXgb5Et0RpAsUVm5WLm1iUcMlszYlplxS/tIG7PPKUiaf6xqmoyLOkiqeu70Yvr+RiSVjyh+DJlItdENT4o43whdQZX
        SGbdDVyrdXds/6K/rS1h/AveIwoXgDx9n0Ker0ZmQ+1qPtW2bJA9gwmpfsDeJywAOOsOWVyg+t8FGHUGq4mpluPtq0wtftbed7/Z
        7pBphTsYMrBwm3ciC6jZL1uEC4DbrlhavZ396++wLm013H1YDeSXqNOs7cWM0trsTgbH+MAerUuF7EHaQ6y/wOi5YK3Vm549slNW
        oxftxgwnx0KKZCASzry1tOPJMdBnZfO3fCfzotexvq72VY+qGEmXWfjA/xS/hzODZ79LJXhXVvgKfYRCC1X+eviFVhlZMNYKbdTC
        zI/qeenalaJic3JZH8KeeXkds4VL9M84Qe5oik8YmpP5vmL4lUIfOKQTnFBO+oAjwnAR12lrZfZOpqu98CnUk5YBrPYlHQ8nzF+u
        BQTUL07TK+RWq4QroeeWKEkeFtbBUqMxw0EKP5yBGYvCNYVM0/egbCLLuWxRP1fP0OGurCMXhK+LgStGjynMZsHAgy7zcKQNWOgb
        wvCnzZ9Rp7Z4PwbCYHXFmN0lo9mS12Dqdcy5cl9AXUP7wCprQRX2O/FnoyVJW+/X/yNwmHl+2ZXBoKKZLXEDC6fdTMMpRNmpJc4+
        Q1C4+34h0991ywxcsM4ybPM6K2vlsm8m3voL4Vc/oqVbVP2kVovhSwIXms2GSZ5XDkSDn7rSj7BBpNt11lS67na26X0ZzDYL29wB
        mdIxOgrHSzKy7lSbi1vchRL0tQVIpeC7RpZMgvU2pePlbYvjjmw9hcOhwPojJb30wE4ZQKFLOoRLcoFHcHwOiFgOSwhLN3qwzAo9
        Szbs5C6dvwAmcrkVwBHi3g74GTQVBCFMdIZ1WC8ZrZIUCwl4VAJA3ET66rui+3j1zXFI5g2rDsC4IEyvx5cxJovOdXeRxB6pCmJA
        s2X4UHtniY9zW+muq25HY53mAl0RM5t+ZPoLLGaa/axfGNNsDhKhqdlnQzjaT7CIqpUogTnNjiaTLi5nta52Z/CCl6XG8QJZR1Nt
        V6samJlH11Yzi10gNMPK3kKFVO0sZO2vl+i19PXwQAYZ8qOVMKNAdp0X1ilkj7443iCxZoqASiD9uEWIMSW3SdSTE0xR9UXB1yEu
        IaYcnGUTMAeYIVwVXCzEZWKq8Znk49NcYvqte0b7+LQuQZQtcwoBFAM4fpAcettNGBpNKxx66MA5os5SODsDwzwrU8wDEE2vg4kM
        Ly87GtGNj0g7fAj2ucv3w1k81gaOc5TiXzm+xwi/xMvmfvDh/Vu7764wN9qePRMXM4XEaL0yarSbW0mPSnpHJAsqzGxt3s/K+2jm
        spiWmxDAYV7ZIc4iuFxdauz8/D+SVxUuWMp1sdAljPnqMDMOcZ8OUGpYGxXRbHnOLISJqbFglwbjuAIX5oaIuyjwfJo7eaYs9sA4
        JBHQ1j9A1ebVVW6JmxbvXz1ibc4Kh5q3NP6SkLV20QAVrm/QGukd4JEAf9CPq+/IVtDKTS5ZbBYq5qrD1VdvPRsxpykwqavdVDlz
        dR3jhT0nhb+Mns01Pl7ZelTl01Hm8EZwMnGVpo0bPpgksfaN4EelEFT13F4pGlqCeg6s4URJ9PpTz3vr62rfxJZtow/WcVVo7W4J
        NSYIE0hJOCXCQRavSmiUJ7x4pHN/2U/mlzSLKBfFz/p6Gjd70ndD2R/9ou6ArUf7zJw0kkwJISHorDkujqzRDW9cYZuqdG9kIsia
        WDBjkgZ+DlJtyWX2Ceoea8tGWx0Bg9hoLVp2RIGf1zXZAwxGkoFqsviTf23FDB9OmcCC9FM71ZlqrL0NoTlZAVF7dzxMKOGYK9Jr
        4c+yUz55TC0ISaCOLBIezKXKFgOBhqu19sSyglQ63FljGm0tdERtqzACdBkWzz7GYyXrJabMcm4Oi8fT0c/kIZh7xOUWqUdTzguD
        83QOUK3ZIJjztctYxELF8FZxVmlg3UnUG5wEe8lNgnflWBEYW/2Tx8S5+FCXQNNKlqjbyGFiEvwI2tQIeTYjpO6UC4HlYsMW2l5J
        KK4l4BOusGyhsuFGuPsyjU6GNaqETVexoksEK/2Hk0YpLaW0US6660QFKLIGerIWZIDXPKd42at44L+GNBhY9FovpPi1LXhQzvhD
        FZaBuN81E6B5wCT/nMLjgOLWkiJYEJ85YtqUkHjF8UnwAtALwrG4by64Apsgyix+SXfkwXP0Wa+lkTxGLJLOEtAoi0ftSXnwtePS
        Wt2dzkCwfDVnNMCVlEjUGQjoJfbW5WXZheMxS/RZrXHHyecVezQXpB8lpBby4y7OOKsS3gizUy7aGPcFTkMWVtR7ltTRwQmiZvov
        QYb7UQHgRpHAD/ZZPDTNaJTQ+eorHpizSh8xSt8iCEw47ZFMyvS5nxrB4a6UFnHWRFYWBSJLFmwSxEXaMu0a611KMu2aQJJhper0
        WPFvYlJXiJA0bWfJgESyGAXjq+kgXpb1IGpv9Ai6u2ppGBZvK86Idl8I2iX5sGhyijoe67bEnaGD0dfTC7hUtfpWlyakoit51FxT
        Qmy9nwMpJ4YMJ8yRJKJqTks6iGaIZizr1e4Grj5aBlpxG18kBOis6Lclj9jE6CrnME2wFHOJpdDCMOxQbwuvX8zy7wc7muAvWV5c
        pkJBvuEKDuH1gFt0F2ETymd+QUmYozBcIqu7ObPyBF43heA4zlQkPiCnwsXh3NErYUpmOJ2L7+xLloLEkF740NSxKIF+5BQ0Dv7X
        MlF0SJEE6ULCMeBwE9jADSOLWr8k1wDcPtk5i8wrgHI2BemBK9wyGW+XOD32XozqRrzPPHE6XBZXNAhu3mkFBZS6lISew0CqP2wB
        NTbhFqFthHJTc35q9UBdzv7n2hLkLgriPQmIyYy4B9GPZru6AarNg7zMHpixyRQ/Z/F38mS4me4g5DfrQLlEKNndQvcCldn2dReG
        20IPbMm4/p4w1j5rPiIxB+/XusDQWa3HELpJZP8wQAwxm9CQXYDWtSHOQKv4LL5G3oBKgJuSSXAJIV6pQOUQiwqqOCtHdYuL1I0S
        sQJHvsWhdQHdYZyCR71jQbFN68tByzTRyxM3xAnpQwZRwT3g/4ROFGEHQfj85A8nBV4oEDPF02inldUE4OSspFPcvYFrELWkKwfq
        ZM+i21eoTJ3SDScbXmftxyiq2vtoC/WMtZTcaIc1PBSxnfi+urAt6uIZDXakl6zammGpuQALRSihrB/JcbhJWX/owiQzAI0x3coF
        uAsuMOsW+17w8cVvbWye8GmvhGjYhCDF49SWOaPnwXoT3HNFMxAHaroiz7I4naWCPOLu0WXnMJEs63RYpPtZZKhEEDBS7yLLNgXA
        LMblDBlH8m1BIEepsxyktrfYw69YDDMSz1jeWhyi5h5fi1RN15Ga20V2V0rB4OTxC9qbO8kukg+3EgFmTAxlyejCSD5dhqi6QaDU
        JyW/lmyiy1HSUXDEuSkeJHjwxPWwvVBcImTMhOiyZpo6uUiOBO0WbZ6ZzXEKFVN2XDNTxTqo0MmwG+BmiimyhyBQyVAwK7lpvsOL
        w9GGkBSepERKIZUQzxLEf0pgNDwhnsqcvGA5q9hB78DcDtuca2e7NlBvhKMBkxkcv3eZ0XRJzVVhlPNDju9mYJjJs2Q135SLuUBO
        vhAIDfX5Od6nZK79oxS7GEwvXkZP0GWFZoVdxcWIByNaVxI9wuWmEGwNIRU0AZlj6JQ9e/ze+rrrGdnR5F7uwU4jEEVItS059zOy
        vyPtN5K1E9eMHox8Q3NwInPWmm4hGFw2xVznUxbilURuab6CrF9aNapDhfhNsQQZts5U770Bd4Z4u7aJ09IK8XCBVYeQHV20rSVn
        KOOtE8J+HwUZPSuTXrcUMYFaJemMfE7zcSg9A5KTEwI9Gx3ZKDBCRnlokkWgHJKI+AxrV19LVxZkLH8Ss1sTGcRqo9ktLMKGU1q7
        JLk9dl1PWHw0cGE7HCPOOWWfAJxXE2e49efDrIRG0yNzyNUSQFUSqrVMi5ls/bNCVSb0t0ZYs2rx3AfTMbwvjmEJbxJHGrJV+GYu
        HnpQORK9zNLPZYed51q9HE3r1xp6hSf4X6Rler5vkEc5hYXqGQUNG6JyIaykoRMukdWj592uUDmLnjtlTLA2R5J7xkHsjFgZB5eI
        ASY3PEkplG/B5AJOU+bJ3H6yNQvj6vItRwxEKGfMj9YciUnYWIA4PSDS4MyKWpRW40c83JRS8WS1uClrZolvxGap2eO9SyqETB/4
        FEf9WK/20fwWrOo4CsWzng6c0bio5FTtYaPnD4oPPc2RIE/CZ5Miz0aN+ErnrbbNb84N7md8N4NZMyDjBnZpfSWXk7PI52LKWyqT
        sKXLrJIa2+qRIHaCzVyTVZ+a0KYumu7pmK5ySfHxzS5QKbl7yDK3nN0AiBWFKmspqqleUtUPhKx1b+fR8YpoRrXIAgB45Jgl1MTB
        U7O71LYUaxJkP5SFeWb9ITJVg6RbX7e0bpC95r7JvJ2dpVfbGWEWZYToo3UdY3UfZTvy7iV7AJ3KZR4LhIoZFwxlW0IRcvcm5Xxp
        87rEgPvrGgPpoZa0hu0jIkAQ4tDc0HFe8SbjnaMAHr3cJVVLQQXWWxYwruvLq7bkarHwqkVO2pChkUZxMdxFpQbxb7TTvTth0QnB
        0f3YIKvKGpQCpmzJaEgtXw1t45PB5qXNA0N9Z0MznsngibHZlreREXcbyk2vo0I4QejsvPe8Fae9QfqKpjigteUODnamcNU8Kyaa
        EZCqNwjQp/q2nymeU1lIKMfCDRxW4LT1uzEwv2G/9FomC3Zd2IM37hUq2DaQfDjbAJ49cz4F54glGQtBO+uY4LDm+OWStUM49CJl
        zWPR5AHlOK/Cz0RxnEy5NBplWnHT+b6SZ3jDSUxJ8MXT9oo3Lt7Q4YZu02O9OUW01wFzFnNWbiNktFFJ4QcTc3DBDFi3DFUcGxY3
        jRhSJMXGk5uX5pvScEqJiD3SItiuUhZl3QxtiP1RbLy4bKE0yi7brAGKWat4Y9Zact9HzKqQPOwbiYaBe5sLWF+a3Vx1bG1XhAuE
        Ms1EaHNLbPZh7BSVaq6RMffuHJGT2CEKGQl4r2yzF3MWOB1lq7ZYPVkQkVQCUZETa3GIu0kSuWUc/gRo1BKS9BTKmilTRUrximWP
        yCGhXP39RekaCF/YWijcKj/jh4XtOv7BGx0CUXqMKKUMrfRn3G87qLgnnGYvOaWuNxdZojDQn92EAXK3KBYxkYLRMmpQUpgcaeXN
        isiPiN1FrmdtqGTQZAw7izYmBkYRne0i9m04BpB4csmKqXIOBd/qE9gWBMbzmJHu4o9uAZjmql6VxIM8qhBateDES3qtqwsRX6+n
        /7iUaP2rTCWLQl5tQxBLvsxrdB60TCRW6Z4RnsCGcHZgtlzK6qeEUon5plsJONyJEDeSW1ASf8lfs2YjNQ18bsU4ZPuigQwEQZsT
        2LKGoKHSQxoDVFiBPqjohX0ESzqxOJctM3VFzyp9aEpuy4U21zYGK45GHDwsW7YYKbRblLV48UOFVWY0YMK1UHzV3N8S8BJINLF9
        vawejU24tWSEs23/C9/hwUIESLvPETXbKaOmjNakdmQ8jwhqpq2wPsp+a/I8awrTI/u9HEL3SsCCxjlicjtVEgNXPShbU22m15OI
        PwfrJgupcsODZ8KcDxiTjJHCuXK4kZLqtXBEJ/vkxdycQhesRZc1x8u9lrscJKfNCxhMaV1v54psYrItra6C7XfsIbX4EUbr2uwQ
        YVMDNgSqOZhcYwsBW8dMDntHPSIFVZNyAGw5Oa16oAyiDhyvHt5oVaPFOfPU0pb3FszMRp5TjnLJ9aOcwucrSMA1QuQGwIlyvj9B
        3/WHZBL8Nu9Fk4sW9vayNM8wR1FKJrojjsWptBnpq80sWNQuevY6teRZ2kLAunhVuHMRNNMyK/NcyOMq5IFz/ep5RriGA3VVu7Sf
        CNpiWyU6Fn8cUK9zL2hIR4qbkRBDNZjwiu37Ul0DuOGKYEA9LwDxiI14ed9heyf0cuAspYXDr7sRpKpIX7N8L072lDqNnao8KzPP
        D+71Yo1RYl67Zz8V3cdCJAWYa1+beFL1I6Z4IqHjHS6fpfDoyRU58+0OuWKXsYZefQlfQNy20GlUjy+cWsSOwt+UfiaRZqQ2gpOA
        eoi4AqLbTmPlUNXow8OBi5DXKfHvGddt18vguxx3M3Ryh+FbN9/K3X/cQOSsGq548B5BzdZscx7luXWjm7wDhqUfl+qJfNX8J+tI
        BxI1VzEZlajtiCPlpYobNi6xV4hz3ZbZxpo3rLs8ButVE+HsucZW/l0FOTRVPCzAhwqnmjK00/4RttecoJpUzlkxwYJUBc0if8t9
        eTLLwCVlWyfDvZymajWOOuvYcUWCwaZA+IQYRFTgRIQ8me3qciw/5gC3U9nPWV1hHE7G3n3KSnLGiQtSfCMtjVKpWkgjlGRiPTdq
        ybBApUhhVlYKjq4y3uqfr744iivNo/aLEiucq2dFTJS/FcxRsUEqQNXYJdtvTkCA55ct0T3kcKq+FRGOEB4zYnDs1SnLiV7Unlhl
        WkTWz36uQq8qh51U8g4oFGkOS2jUfK9nQY444s4iWA/AnvjOUpStcvOLCPo4wdMovicvjPK+KjA5OhFkbrXEll/YB03vWJBiXjwU
        wA7PV32BYEsRIgH0Y6/xEPPp56AiK1QBqQkN2bDXLsZbZqzrBpnlUAZqB4iSBDmv/U5wGZIDAHvZx9o9j8qB7/Y8Qb1fa9CiSCUm
        M2WxWjsQ317pnCvkUYiERJWQbgdRmuF0s74W7iIFBBf3utVtXr83nhN3dLkRplQD4nnjzqp2SH4xZeaeiH1dQeYPTDnwXp81Mr9g
        AHXQzSbFI2T04vZ6SQ3ULXOXvo7tA1j3dtEf/+qRlSNc/Jrl8GS6UHTdN8qnTTxDraRfefTSjLwZS67wRpdF28xOzZsQfjGrEDal
        APvd3XN0PnxphX+xq2kLiO3BkSmOD+Ydey6BoI7CgpqpscSHxFYOmq/ILsILRltFuk1kEfsGS8otedYgDH9loG/rXdFFKTb2DNlc
        jU3BkeveekAN2ie0F/vVYH+as51Zqucnp6xrPjrlSd6R3s88Pzmbusvs6CRRP+2mVM9AKEfKmh2lQw4756S2475qKVc8DQJdnPAe
        yPL4/w==
        """)

    static let skewedCount = 60000
    static let skewedCRC: UInt32 = 0x37E2_C2C4

    static func fixture(_ base64: String) -> [UInt8] {
        [UInt8](Data(base64Encoded: base64.filter { !$0.isWhitespace })!)
    }
}

/// The 10 106-byte text behind gzText/gzStored/rawFixed.
func text10k() -> [UInt8] {
    var s = ""
    for i in 0..<160 { s += "line \(i): the quick brown fox jumps over the lazy dog; value=\(i * i % 97)\n" }
    return Array(s.utf8)
}

/// The pseudo-random bytes behind gzRandom (32-bit LCG, byte = bits 16...23).
func lcgBytes(_ n: Int, seed: UInt32) -> [UInt8] {
    var x = seed
    return (0..<n).map { _ in
        x = x &* 1_103_515_245 &+ 12345
        return UInt8(truncatingIfNeeded: x >> 16)
    }
}

/// SplitMix64, for reproducible fuzzing without depending on SculptCore.
struct TestRNG: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Writes a DEFLATE bit stream: `bits` LSB first, `code` (Huffman codes) MSB first.
struct BitWriter {
    var bytes: [UInt8] = []
    var acc = 0
    var n = 0
    mutating func bits(_ value: Int, _ count: Int) {
        for i in 0..<count {
            acc |= ((value >> i) & 1) << n
            n += 1
            if n == 8 { bytes.append(UInt8(acc)); acc = 0; n = 0 }
        }
    }
    mutating func code(_ value: Int, _ length: Int) {
        for i in stride(from: length - 1, through: 0, by: -1) { bits((value >> i) & 1, 1) }
    }
    func finish() -> [UInt8] { n > 0 ? bytes + [UInt8(acc)] : bytes }
}

/// A valid gzip file holding `payload` in stored (uncompressed) blocks.
func storedGzip(_ payload: [UInt8], blockSize: Int = 65535) -> [UInt8] {
    var out: [UInt8] = [0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 0xFF]
    var p = 0
    repeat {
        let n = min(blockSize, payload.count - p)
        let final: UInt8 = p + n == payload.count ? 1 : 0
        out += [final, UInt8(n & 0xFF), UInt8(n >> 8), UInt8(~n & 0xFF), UInt8((~n >> 8) & 0xFF)]
        out += payload[p ..< p + n]
        p += n
    } while p < payload.count
    let crc = Gzip.crc32(payload)
    let size = UInt32(truncatingIfNeeded: payload.count)
    for v in [crc, size] { for k in 0..<4 { out.append(UInt8(truncatingIfNeeded: v >> (8 * k))) } }
    return out
}

/// A Fashion-MNIST file from the shared data directory ($SCULPT_SHARED, else
/// `<repo root>/../shared`), or XCTSkip with the reason printed.
func fashionMNISTFile(_ name: String) throws -> URL {
    try SharedData.require("datasets/fashion-mnist/\(name)")
}

func assertCompressionError(_ kind: CompressionError.Kind, file: StaticString = #filePath, line: UInt = #line,
                            _ body: () throws -> Any) {
    do {
        let result = try body()
        XCTFail("expected \(kind), got a result: \(result)", file: file, line: line)
    } catch let error as CompressionError {
        XCTAssertEqual(error.kind, kind, "\(error)", file: file, line: line)
        XCTAssertFalse(error.description.contains("\n"), file: file, line: line)
        XCTAssertFalse(error.description.isEmpty, file: file, line: line)
    } catch {
        XCTFail("unexpected error type \(error)", file: file, line: line)
    }
}

final class InflateTests: XCTestCase {
    func gunzip(_ bytes: [UInt8]) throws -> [UInt8] { [UInt8](try Gzip.decompress(Data(bytes))) }
    func inflate(_ bytes: [UInt8]) throws -> [UInt8] { try bytes.withUnsafeBytes { try Deflate.inflate($0) } }

    // MARK: Round trips against Python-made streams

    func testEmpty() throws {
        XCTAssertEqual(try gunzip(Fixtures.gzEmpty), [])
    }

    func testHello() throws {
        XCTAssertTrue(Gzip.isGzip(Data(Fixtures.gzHello)))
        XCTAssertEqual(try gunzip(Fixtures.gzHello), Array("hello".utf8))
    }

    func testDynamicBlocks() throws {
        XCTAssertEqual(Fixtures.gzText[10] >> 1 & 3, 2, "fixture should start with a dynamic block")
        XCTAssertEqual(try gunzip(Fixtures.gzText), text10k())
    }

    func testStoredBlocks() throws {
        XCTAssertEqual(Fixtures.gzStored[10] >> 1 & 3, 0, "fixture should start with a stored block")
        XCTAssertEqual(try gunzip(Fixtures.gzStored), Array(text10k()[..<800]))
    }

    func testRandomBytes() throws {
        XCTAssertEqual(try gunzip(Fixtures.gzRandom), lcgBytes(1000, seed: 42))
    }

    func testFixedHuffman() throws {
        XCTAssertEqual(Fixtures.rawFixed[0] >> 1 & 3, 1, "fixture should start with a fixed-Huffman block")
        XCTAssertEqual(try inflate(Fixtures.rawFixed), Array(text10k()[..<2000]))
    }

    func testLongCodesUseSubtables() throws {
        let out = try inflate(Fixtures.rawSkewed)
        XCTAssertEqual(out.count, Fixtures.skewedCount)
        XCTAssertEqual(Gzip.crc32(out), Fixtures.skewedCRC)
    }

    func testMultipleMembers() throws {
        XCTAssertEqual(try gunzip(Fixtures.gzMulti), Array("hello world".utf8))
    }

    func testHeaderFlags() throws {
        XCTAssertEqual(Fixtures.gzFlags[3], 0x1F)
        XCTAssertEqual(try gunzip(Fixtures.gzFlags), Array("hello, header flags".utf8))
    }

    func testTrailingZeroPaddingIsIgnored() throws {
        XCTAssertEqual(try gunzip(Fixtures.gzHello + [0, 0, 0, 0]), Array("hello".utf8))
        XCTAssertEqual(try gunzip(Fixtures.gzHello + [0, 0] + Fixtures.gzHello), Array("hellohello".utf8))
    }

    func testConsumedCountIgnoresTrailingBytes() throws {
        var consumed = -1
        let out = try (Fixtures.rawFixed + [1, 2, 3]).withUnsafeBytes { try Deflate.inflate($0, consumed: &consumed) }
        XCTAssertEqual(out, Array(text10k()[..<2000]))
        XCTAssertEqual(consumed, Fixtures.rawFixed.count)
    }

    func testStoredGzipHelperAndLargeStoredData() throws {
        let payload = lcgBytes(200_000, seed: 9)
        let gz = storedGzip(payload, blockSize: 65535)
        XCTAssertEqual(try gunzip(gz), payload)
        XCTAssertEqual(try gunzip(storedGzip([])), [])
    }

    func testHandBuiltFixedBlock() throws {
        // 'a' then <length 3, distance 1> then end of block: "aaaa".
        var w = BitWriter()
        w.bits(1, 1); w.bits(1, 2)
        w.code(0x30 + 97, 8)
        w.code(1, 7) // symbol 257: length 3
        w.code(0, 5) // distance symbol 0: distance 1
        w.code(0, 7) // end of block
        XCTAssertEqual(try inflate(w.finish()), Array("aaaa".utf8))
    }

    func testCRC32() {
        XCTAssertEqual(Gzip.crc32(Array("123456789".utf8)), 0xCBF4_3926)
        XCTAssertEqual(Gzip.crc32([UInt8]()), 0)
        let data = lcgBytes(1001, seed: 3)
        // Slicing-by-8 path agrees with the bytewise definition, and seeds chain.
        var crc: UInt32 = 0xFFFF_FFFF
        for b in data {
            crc ^= UInt32(b)
            for _ in 0..<8 { crc = crc & 1 != 0 ? 0xEDB8_8320 ^ (crc >> 1) : crc >> 1 }
        }
        XCTAssertEqual(Gzip.crc32(data), ~crc)
        XCTAssertEqual(Gzip.crc32(data[500...], seed: Gzip.crc32(data[..<500])), ~crc)
        XCTAssertEqual(Gzip.crc32(Data(data)), ~crc)
    }

    // MARK: Errors

    func testNotGzip() {
        XCTAssertFalse(Gzip.isGzip(Data()))
        XCTAssertFalse(Gzip.isGzip(Data([0x1F])))
        XCTAssertFalse(Gzip.isGzip(Data([0, 0, 8, 3])))
        assertCompressionError(.notGzip) { try self.gunzip([]) }
        assertCompressionError(.notGzip) { try self.gunzip(Array("PK\u{3}\u{4}zip".utf8)) }
        assertCompressionError(.notGzip) { try self.gunzip([0x1F]) }
    }

    func testUnsupportedHeader() {
        var bad = Fixtures.gzHello
        bad[2] = 7
        assertCompressionError(.unsupported) { try self.gunzip(bad) }
        bad = Fixtures.gzHello
        bad[3] = 0x80
        assertCompressionError(.unsupported) { try self.gunzip(bad) }
    }

    func testTruncated() {
        let gz = Fixtures.gzText
        for cut in [3, 5, 9, 10, 11, 30, gz.count / 2, gz.count - 9, gz.count - 8, gz.count - 4, gz.count - 1] {
            assertCompressionError(.truncated) { try self.gunzip(Array(gz[..<cut])) }
        }
        assertCompressionError(.truncated) { try self.inflate([]) }
        assertCompressionError(.truncated) { try self.inflate(Array(Fixtures.rawFixed.dropLast(20))) }
        // Stored block promising 5 bytes but holding 1.
        assertCompressionError(.truncated) { try self.inflate([0x01, 0x05, 0x00, 0xFA, 0xFF, 0x61]) }
        // Header flags announcing a file name that never ends.
        assertCompressionError(.truncated) { try self.gunzip(Array(Fixtures.gzFlags[..<25])) }
    }

    func testInvalidBlockType() {
        var w = BitWriter()
        w.bits(1, 1); w.bits(3, 2)
        assertCompressionError(.invalidBlockType) { try self.inflate(w.finish() + [0, 0, 0]) }
    }

    func testStoredLengthMismatch() {
        assertCompressionError(.invalidStoredLength) { try self.inflate([0x01, 0x05, 0x00, 0x00, 0x00, 1, 2, 3, 4, 5]) }
        XCTAssertEqual(try inflate([0x01, 0x03, 0x00, 0xFC, 0xFF, 0x61, 0x62, 0x63]), Array("abc".utf8))
    }

    func testOverSubscribedCodeLengths() {
        var w = BitWriter()
        w.bits(1, 1); w.bits(2, 2)
        w.bits(0, 5); w.bits(0, 5); w.bits(15, 4) // HLIT 257, HDIST 1, HCLEN 19
        for _ in 0..<19 { w.bits(1, 3) }          // 19 codes of length 1
        assertCompressionError(.invalidCodeLengths) { try self.inflate(w.finish() + [0, 0, 0, 0]) }
    }

    func testIncompleteCodeLengths() {
        var w = BitWriter()
        w.bits(1, 1); w.bits(2, 2)
        w.bits(0, 5); w.bits(0, 5); w.bits(0, 4)  // HCLEN 4: symbols 16, 17, 18, 0
        w.bits(2, 3); w.bits(0, 3); w.bits(0, 3); w.bits(0, 3) // one code of length 2
        assertCompressionError(.invalidCodeLengths) { try self.inflate(w.finish() + [0, 0, 0, 0]) }
    }

    func testTooManyLengthCodes() {
        var w = BitWriter()
        w.bits(1, 1); w.bits(2, 2)
        w.bits(31, 5); w.bits(0, 5); w.bits(0, 4) // HLIT 288 > 286
        assertCompressionError(.invalidCodeLengths) { try self.inflate(w.finish() + [0, 0, 0, 0, 0, 0]) }
    }

    func testInvalidCodes() {
        var w = BitWriter()
        w.bits(1, 1); w.bits(1, 2)
        w.code(0xC0 + 6, 8) // fixed symbol 286: reserved
        assertCompressionError(.invalidCode) { try self.inflate(w.finish() + [0, 0, 0, 0]) }
        w = BitWriter()
        w.bits(1, 1); w.bits(1, 2)
        w.code(0x30 + 97, 8)
        w.code(1, 7)  // length 3
        w.code(30, 5) // distance symbol 30: reserved
        w.code(0, 7)
        assertCompressionError(.invalidCode) { try self.inflate(w.finish() + [0, 0, 0, 0]) }
    }

    func testDistanceTooFar() {
        for (literals, distanceSymbol) in [(0, 0), (1, 1), (4, 4)] { // distances 1, 2, 5
            var w = BitWriter()
            w.bits(1, 1); w.bits(1, 2)
            for _ in 0..<literals { w.code(0x30 + 97, 8) }
            w.code(1, 7)
            w.code(distanceSymbol, 5)
            if distanceSymbol == 4 { w.bits(0, 1) } // one extra bit: distance 5
            w.code(0, 7)
            assertCompressionError(.distanceTooFar) { try self.inflate(w.finish() + [0, 0, 0, 0]) }
        }
        // A later gzip member cannot refer back into an earlier one.
        var w = BitWriter()
        w.bits(1, 1); w.bits(1, 2)
        w.code(1, 7); w.code(0, 5); w.code(0, 7)
        var member: [UInt8] = [0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 0xFF] + w.finish()
        member += [0, 0, 0, 0, 3, 0, 0, 0]
        assertCompressionError(.distanceTooFar) { try self.gunzip(Fixtures.gzHello + member) }
    }

    func testCRCAndSizeMismatch() {
        var gz = Fixtures.gzText
        gz[gz.count - 8] ^= 0x01
        assertCompressionError(.crcMismatch) { try self.gunzip(gz) }
        gz = Fixtures.gzText
        gz[gz.count - 2] ^= 0x01
        assertCompressionError(.sizeMismatch) { try self.gunzip(gz) }
        var flags = Fixtures.gzFlags
        flags[12] ^= 0xFF // inside FEXTRA, covered by the header CRC-16
        assertCompressionError(.crcMismatch) { try self.gunzip(flags) }
    }

    func testTrailingGarbage() {
        assertCompressionError(.trailingGarbage) { try self.gunzip(Fixtures.gzHello + [0x42]) }
        assertCompressionError(.trailingGarbage) { try self.gunzip(Fixtures.gzHello + [0, 0, 7]) }
    }

    func testErrorsAreOneLine() {
        do {
            _ = try gunzip([1, 2, 3])
            XCTFail("expected an error")
        } catch {
            let text = "\(error)"
            XCTAssertTrue(text.contains("not gzip"), text)
            XCTAssertFalse(text.contains("\n"))
        }
    }

    // MARK: Fuzzing: malformed input must throw or decode, never trap

    func testMutationFuzz() {
        var rng = TestRNG(seed: 0x5EED)
        let gzipInputs = [Fixtures.gzText, Fixtures.gzRandom, Fixtures.gzStored, Fixtures.gzFlags, Fixtures.gzMulti, Fixtures.gzHello]
        let rawInputs = [Fixtures.rawFixed, Array(Fixtures.rawSkewed[..<2000]), Array(Fixtures.gzText[10...])]
        var threw = 0
        var total = 0
        for iteration in 0..<4000 {
            let useGzip = iteration % 2 == 0
            var bytes = useGzip ? gzipInputs[Int.random(in: 0..<gzipInputs.count, using: &rng)]
                                : rawInputs[Int.random(in: 0..<rawInputs.count, using: &rng)]
            for _ in 0..<Int.random(in: 1...4, using: &rng) where !bytes.isEmpty {
                let i = Int.random(in: 0..<bytes.count, using: &rng)
                switch Int.random(in: 0..<6, using: &rng) {
                case 0: bytes[i] ^= UInt8(1) << UInt8.random(in: 0..<8, using: &rng)
                case 1: bytes[i] = UInt8.random(in: 0...255, using: &rng)
                case 2: bytes.removeSubrange(i...)
                case 3: bytes.removeSubrange(i ..< min(bytes.count, i + Int.random(in: 1...16, using: &rng)))
                case 4: bytes.insert(contentsOf: (0..<Int.random(in: 1...8, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }, at: i)
                default: bytes[i] = [0x00, 0xFF, 0x80, 0x7F][Int.random(in: 0..<4, using: &rng)]
                }
            }
            total += 1
            do {
                if useGzip { _ = try gunzip(bytes) } else { _ = try inflate(bytes) }
            } catch let error as CompressionError {
                threw += 1
                XCTAssertFalse(error.description.contains("\n"))
            } catch {
                XCTFail("unexpected error type \(error)")
            }
        }
        // Raw DEFLATE has no checksum, so many mutations still decode; gzip catches most.
        XCTAssertGreaterThan(threw, total / 2, "only \(threw) of \(total) mutations were rejected")
    }

    func testRandomInputFuzz() {
        var rng = TestRNG(seed: 42)
        for _ in 0..<3000 {
            let n = Int.random(in: 0..<200, using: &rng)
            var bytes = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
            _ = try? inflate(bytes)
            if bytes.count >= 2 { bytes[0] = 0x1F; bytes[1] = 0x8B }
            if bytes.count >= 3 { bytes[2] = 8 }
            if bytes.count >= 4 { bytes[3] &= 0x1F }
            _ = try? gunzip(bytes)
        }
    }

    // MARK: Real data

    func testFashionMNISTLabelsFile() throws {
        let url = try fashionMNISTFile("t10k-labels-idx1-ubyte.gz")
        let data = try Data(contentsOf: url)
        XCTAssertTrue(Gzip.isGzip(data))
        let out = try Gzip.decompress(data)
        XCTAssertEqual(out.count, 10008)
        XCTAssertEqual(Array(out.prefix(8)), [0x00, 0x00, 0x08, 0x01, 0x00, 0x00, 0x27, 0x10])
        XCTAssertEqual(out[8], 9)
    }
}
