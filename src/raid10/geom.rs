//! RAID10's geometry (raid10.c `struct geom`, `setup_geo`,
//! `calc_sectors`, `__raid10_find_phys`, `raid10_find_virt`,
//! `raid10_size`): where each copy of an array sector lies.
//!
//! The layout word holds the near copies (bits 0-7), the far copies (bits
//! 8-15), the offset bit (16: the far copies sit in the next stripe
//! instead of the next part of each device) and, in bits 17-18, how far
//! copies rotate: over every device (0), over sets of `raid_disks / far`
//! (1, buggy, kept for old arrays) or of `far * near` devices (2, mdadm's
//! `use_far_sets`).

/// Bytes per page: md refuses a chunk under one.
const PAGE_SECTORS: u32 = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geom {
    pub raid_disks: usize,
    pub near_copies: usize,
    pub far_copies: usize,
    pub far_offset: bool,
    pub far_set_size: usize,
    pub chunk_shift: u32,
    pub chunk_mask: u64,
    /// Sectors between one far copy and the next on a device (set by
    /// `calc_sectors`).
    pub stride: u64,
}

/// Why `setup_geo` refuses a layout (its -1 and -2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeoError {
    /// Bits above 18 set, or an unknown far-set scheme (3).
    Layout,
    /// Chunk under a page or not a power of two.
    Chunk,
}

/// One copy of an array sector: the member slot and the sector on it
/// (from its data offset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Copy {
    pub devnum: usize,
    pub addr: u64,
}

impl Geom {
    /// `setup_geo`: the geometry of `layout` with `chunk` sectors over
    /// `disks`, and the number of copies (near × far).
    pub fn setup(layout: i32, chunk: u32, disks: usize) -> Result<(Geom, usize), GeoError> {
        if layout >> 19 != 0 {
            return Err(GeoError::Layout);
        }
        if chunk < PAGE_SECTORS || !chunk.is_power_of_two() {
            return Err(GeoError::Chunk);
        }
        let nc = (layout & 255) as usize;
        let fc = ((layout >> 8) & 255) as usize;
        let fo = layout & (1 << 16) != 0;
        let far_set_size = match layout >> 17 {
            0 => disks,
            1 => disks.checked_div(fc).unwrap_or(0),
            2 => fc * nc,
            _ => return Err(GeoError::Layout),
        };
        let geo = Geom {
            raid_disks: disks,
            near_copies: nc,
            far_copies: fc,
            far_offset: fo,
            far_set_size,
            chunk_shift: chunk.trailing_zeros(),
            chunk_mask: chunk as u64 - 1,
            stride: 0,
        };
        Ok((geo, nc * fc))
    }

    /// Whether the geometry can place every copy: what `setup_conf`
    /// checks (2 ≤ copies ≤ raid_disks), plus a far set that holds its
    /// copies (the kernel would divide by zero or loop on a broken one).
    pub fn usable(&self, copies: usize) -> bool {
        copies >= 2
            && copies <= self.raid_disks
            && self.far_set_size >= 1
            && self.far_set_size <= self.raid_disks
    }

    /// `calc_sectors`: the sectors of each member used for `size`
    /// sectors per member, setting the stride; `copies` = near × far.
    pub fn calc_sectors(&mut self, size: u64, copies: usize) -> u64 {
        let mut chunks = (size >> self.chunk_shift) / self.far_copies as u64;
        chunks = chunks * self.raid_disks as u64 / self.near_copies as u64;
        // The chunks of the array; those each member holds, rounded up.
        let per_dev = (chunks * copies as u64).div_ceil(self.raid_disks as u64);
        let dev_sectors = per_dev << self.chunk_shift;
        self.stride = if self.far_offset {
            1 << self.chunk_shift
        } else {
            (per_dev / self.far_copies as u64) << self.chunk_shift
        };
        dev_sectors
    }

    /// `raid10_size`: the array's sectors for `sectors` per member.
    pub fn size(&self, sectors: u64) -> u64 {
        let chunks = (sectors >> self.chunk_shift) / self.far_copies as u64;
        (chunks * self.raid_disks as u64 / self.near_copies as u64) << self.chunk_shift
    }

    /// The copies of array sector `sector`, in the kernel's slot order
    /// (`__raid10_find_phys`).
    pub fn find_phys(&self, sector: u64) -> Vec<Copy> {
        let disks = self.raid_disks;
        let fss = self.far_set_size;
        let last_far_set_start = (disks / fss - 1) * fss;
        let last_far_set_size = fss + disks % fss;
        let chunk = (sector >> self.chunk_shift) * self.near_copies as u64;
        let mut s0 = sector & self.chunk_mask;
        let mut stripe = chunk / disks as u64;
        let mut dev = (chunk % disks as u64) as usize;
        if self.far_offset {
            stripe *= self.far_copies as u64;
        }
        s0 += stripe << self.chunk_shift;
        let mut out = Vec::with_capacity(self.near_copies * self.far_copies);
        for _ in 0..self.near_copies {
            let mut d = dev;
            let mut s = s0;
            out.push(Copy { devnum: d, addr: s });
            for _ in 1..self.far_copies {
                let set = d / fss;
                d += self.near_copies;
                if disks % fss != 0 && d > last_far_set_start {
                    d -= last_far_set_start;
                    d %= last_far_set_size;
                    d += last_far_set_start;
                } else {
                    d %= fss;
                    d += fss * set;
                }
                s += self.stride;
                out.push(Copy { devnum: d, addr: s });
            }
            dev += 1;
            if dev >= disks {
                dev = 0;
                s0 += self.chunk_mask + 1;
            }
        }
        out
    }

    /// The array sector whose copy lies at `sector` of member `dev`
    /// (`raid10_find_virt`).
    pub fn find_virt(&self, sector: u64, dev: usize) -> u64 {
        let disks = self.raid_disks;
        let mut far_set_start = (dev / self.far_set_size) * self.far_set_size;
        let mut far_set_size = self.far_set_size;
        if disks % self.far_set_size != 0 {
            let last_far_set_start = (disks / self.far_set_size - 1) * self.far_set_size;
            if dev >= last_far_set_start {
                far_set_size = self.far_set_size + disks % self.far_set_size;
                far_set_start = last_far_set_start;
            }
        }
        let offset = sector & self.chunk_mask;
        let mut dev = dev as i64;
        let chunk;
        if self.far_offset {
            let c = sector >> self.chunk_shift;
            let fc = (c % self.far_copies as u64) as i64;
            chunk = c / self.far_copies as u64;
            dev -= fc * self.near_copies as i64;
            if dev < far_set_start as i64 {
                dev += far_set_size as i64;
            }
        } else {
            let mut sector = sector;
            while sector >= self.stride {
                sector -= self.stride;
                if dev < (self.near_copies + far_set_start) as i64 {
                    dev += (far_set_size - self.near_copies) as i64;
                } else {
                    dev -= self.near_copies as i64;
                }
            }
            chunk = sector >> self.chunk_shift;
        }
        let vchunk = (chunk * disks as u64 + dev as u64) / self.near_copies as u64;
        (vchunk << self.chunk_shift) + offset
    }
}

impl Geom {
    /// `_enough`: with the member in slot `ignore` gone (-1: none), does
    /// every block still have an in-sync copy?  Walks the groups of
    /// `copies` consecutive members, each starting `near_copies` after
    /// the last, as the kernel does for every layout.
    pub fn enough(&self, copies: usize, in_sync: &[bool], ignore: i32) -> bool {
        let disks = self.raid_disks;
        let mut first = 0usize;
        loop {
            let mut cnt = 0;
            let mut this = first;
            for _ in 0..copies {
                if this as i32 != ignore && in_sync.get(this).copied().unwrap_or(false) {
                    cnt += 1;
                }
                this = (this + 1) % disks;
            }
            if cnt == 0 {
                return false;
            }
            first = (first + self.near_copies) % disks;
            if first == 0 {
                return true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geo(layout: i32, chunk: u32, disks: usize, dev_sectors: u64) -> (Geom, u64) {
        let (mut g, copies) = Geom::setup(layout, chunk, disks).unwrap();
        assert!(g.usable(copies));
        let used = g.calc_sectors(dev_sectors, copies);
        (g, used)
    }

    fn copies(g: &Geom, s: u64) -> Vec<(usize, u64)> {
        g.find_phys(s).iter().map(|c| (c.devnum, c.addr)).collect()
    }

    #[test]
    fn layout_words() {
        assert_eq!(Geom::setup(0x102, 128, 4).unwrap().1, 2);
        assert_eq!(Geom::setup(0x201, 128, 3).unwrap().1, 2);
        let (g, c) = Geom::setup(0x10201, 128, 3).unwrap();
        assert!(g.far_offset);
        assert_eq!(c, 2);
        assert_eq!(Geom::setup(1 << 19, 128, 4), Err(GeoError::Layout));
        assert_eq!(Geom::setup(-1, 128, 4), Err(GeoError::Layout));
        assert_eq!(Geom::setup(3 << 17 | 0x102, 128, 4), Err(GeoError::Layout));
        assert_eq!(Geom::setup(0x102, 4, 4), Err(GeoError::Chunk));
        assert_eq!(Geom::setup(0x102, 96, 4), Err(GeoError::Chunk));
        // Layout is checked before the chunk, as setup_geo does.
        assert_eq!(Geom::setup(1 << 19, 3, 4), Err(GeoError::Layout));
        let (g, c) = Geom::setup(2 << 17 | 0x202, 128, 8).unwrap();
        assert_eq!((g.far_set_size, c), (4, 4));
        let (g, c) = Geom::setup(0x103, 128, 2).unwrap();
        assert!(!g.usable(c), "3 copies over 2 devices");
        let (g, c) = Geom::setup(0x101, 128, 2).unwrap();
        assert!(!g.usable(c), "one copy");
    }

    #[test]
    fn near2_over_4() {
        let (g, used) = geo(0x102, 128, 4, 30720);
        assert_eq!(used, 30720);
        assert_eq!(g.size(used), 61440);
        assert_eq!(copies(&g, 0), vec![(0, 0), (1, 0)]);
        assert_eq!(copies(&g, 128), vec![(2, 0), (3, 0)]);
        assert_eq!(copies(&g, 256 + 5), vec![(0, 133), (1, 133)]);
    }

    #[test]
    fn near2_over_3_wraps() {
        let (g, _) = geo(0x102, 128, 3, 30720);
        // Chunk 1's copies: device 2 of stripe 0, device 0 of stripe 1.
        assert_eq!(copies(&g, 128), vec![(2, 0), (0, 128)]);
        assert_eq!(copies(&g, 256), vec![(1, 128), (2, 128)]);
    }

    #[test]
    fn far2_over_3() {
        let (g, used) = geo(0x201, 128, 3, 30720);
        assert_eq!(used, 30720);
        assert_eq!(g.size(used), 46080);
        assert_eq!(g.stride, 15360);
        assert_eq!(copies(&g, 0), vec![(0, 0), (1, 15360)]);
        assert_eq!(copies(&g, 128 * 2), vec![(2, 0), (0, 15360)]);
        assert_eq!(copies(&g, 128 * 3 + 1), vec![(0, 129), (1, 15489)]);
    }

    #[test]
    fn offset2_over_3() {
        let (g, used) = geo(0x10201, 128, 3, 30720);
        assert_eq!(g.size(used), 46080);
        assert_eq!(g.stride, 128);
        assert_eq!(copies(&g, 0), vec![(0, 0), (1, 128)]);
        assert_eq!(copies(&g, 128 * 3), vec![(0, 256), (1, 384)]);
    }

    #[test]
    fn far_sets() {
        // n1 f2 over 5 with sets of 2: the last set takes 3 devices.
        let (g, _) = geo(2 << 17 | 0x201, 128, 5, 30720);
        assert_eq!(g.far_set_size, 2);
        for s in (0..g.size(30720)).step_by(128) {
            let c = copies(&g, s);
            assert_ne!(c[0].0, c[1].0, "sector {s}: {c:?}");
        }
    }

    #[test]
    fn enough_copies_left() {
        let (g, c) = Geom::setup(0x102, 128, 4).unwrap();
        let all = [true; 4];
        assert!(g.enough(c, &all, -1));
        assert!(g.enough(c, &all, 1));
        assert!(g.enough(c, &[true, false, true, true], 2));
        assert!(!g.enough(c, &[true, false, true, true], 0));
        assert!(g.enough(c, &[false, true, false, true], -1));
        assert!(!g.enough(c, &[false, false, true, true], -1));
        assert!(!g.enough(c, &[true, true, true, false], 2));
        // far 2 over 3: each member shares blocks with both others.
        let (g, c) = Geom::setup(0x201, 128, 3).unwrap();
        assert!(g.enough(c, &[true, false, true], -1));
        assert!(!g.enough(c, &[true, false, true], 0));
        assert!(!g.enough(c, &[true, false, true], 2));
        // near 2 over 3: the pairs wrap around.
        let (g, c) = Geom::setup(0x102, 128, 3).unwrap();
        assert!(g.enough(c, &[true, true, true], 1));
        assert!(!g.enough(c, &[false, true, true], 1));
        // near 3 over 3 is a three-way mirror: one member is enough.
        let (g, c) = Geom::setup(0x103, 128, 3).unwrap();
        assert!(g.enough(c, &[false, false, true], -1));
    }

    /// Every copy of every chunk maps back to its array sector, and no
    /// device holds two copies of one sector.  (Not so in the kernel's own
    /// mapping for some geometries mdadm does not make, which this one
    /// follows: offset copies over near copies that wrap, 0x10202 over 5
    /// devices, and far sets of near copies whose last set is larger,
    /// 2 << 17 | 0x202 over 9.)
    #[test]
    fn find_virt_inverts_find_phys() {
        let layouts = [
            (0x102, 4),
            (0x102, 3),
            (0x102, 5),
            (0x103, 3),
            (0x103, 4),
            (0x201, 2),
            (0x201, 3),
            (0x201, 4),
            (0x301, 3),
            (0x301, 5),
            (0x10201, 2),
            (0x10201, 3),
            (0x10301, 4),
            (0x202, 4),
            (0x202, 5),
            (0x10202, 4),
            (2 << 17 | 0x201, 4),
            (2 << 17 | 0x201, 5),
            (2 << 17 | 0x202, 8),
            (2 << 17 | 0x10201, 5),
            (1 << 17 | 0x201, 4),
        ];
        for (layout, disks) in layouts {
            for dev_sectors in [30720u64, 30720 - 128, 4096 + 128 * 7] {
                let (g, used) = geo(layout, 128, disks, dev_sectors);
                assert!(
                    used <= dev_sectors,
                    "{layout:#x}/{disks}: {used} > {dev_sectors}"
                );
                let size = g.size(used);
                let mut seen = std::collections::HashSet::new();
                for s in (0..size).step_by(64) {
                    let c = g.find_phys(s);
                    let mut devs: Vec<usize> = c.iter().map(|x| x.devnum).collect();
                    devs.sort_unstable();
                    devs.dedup();
                    assert_eq!(devs.len(), c.len(), "{layout:#x}/{disks} sector {s}: {c:?}");
                    for x in c {
                        assert!(x.devnum < disks);
                        assert!(
                            x.addr < used,
                            "{layout:#x}/{disks} sector {s}: {x:?} past {used}"
                        );
                        assert!(
                            seen.insert((x.devnum, x.addr)),
                            "{layout:#x}/{disks}: {x:?} twice"
                        );
                        assert_eq!(
                            g.find_virt(x.addr, x.devnum),
                            s,
                            "{layout:#x}/{disks}: {x:?}"
                        );
                    }
                }
            }
        }
    }
}
