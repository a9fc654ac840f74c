//! Where raid4/5/6 put data and parity (`raid5_compute_sector` and
//! `compute_blocknr` of drivers/md/raid5.c): array sectors to member
//! sectors and back, for every algorithm md knows, and the order in
//! which a stripe's blocks enter the RAID-6 syndrome
//! (`set_syndrome_sources`).

/// The algorithms (`ALGORITHM_*` of drivers/md/raid5.h).
pub const LEFT_ASYMMETRIC: i32 = 0;
pub const RIGHT_ASYMMETRIC: i32 = 1;
pub const LEFT_SYMMETRIC: i32 = 2;
pub const RIGHT_SYMMETRIC: i32 = 3;
/// Parity on the first member (raid4's other layout).
pub const PARITY_0: i32 = 4;
/// Parity on the last member(s) (raid4's layout; raid6's `parity-last`).
pub const PARITY_N: i32 = 5;
/// DDF's layouts (raid6 only).
pub const ROTATING_ZERO_RESTART: i32 = 8;
pub const ROTATING_N_RESTART: i32 = 9;
pub const ROTATING_N_CONTINUE: i32 = 10;
/// The raid5 layouts with Q on the last member, which a raid5 converted
/// to raid6 has (raid6 only).
pub const LEFT_ASYMMETRIC_6: i32 = 16;
pub const RIGHT_ASYMMETRIC_6: i32 = 17;
pub const LEFT_SYMMETRIC_6: i32 = 18;
pub const RIGHT_SYMMETRIC_6: i32 = 19;
pub const PARITY_0_6: i32 = 20;
pub const PARITY_N_6: i32 = PARITY_N;

/// `algorithm_valid_raid5`.
pub fn algorithm_valid_raid5(layout: i32) -> bool {
    (0..=PARITY_N).contains(&layout)
}

/// `algorithm_valid_raid6`.
pub fn algorithm_valid_raid6(layout: i32) -> bool {
    (0..=PARITY_N).contains(&layout)
        || (ROTATING_ZERO_RESTART..=ROTATING_N_CONTINUE).contains(&layout)
        || (LEFT_ASYMMETRIC_6..=PARITY_0_6).contains(&layout)
}

/// The layout of one array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// 4, 5 or 6.
    pub level: i32,
    pub algorithm: i32,
    pub raid_disks: usize,
    pub chunk_sectors: u64,
}

/// Where one stripe (a row of chunks) keeps its parity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stripe {
    /// The P member.
    pub pd_idx: usize,
    /// The Q member (raid6).
    pub qd_idx: Option<usize>,
    /// A DDF layout: the syndrome takes every member in order, P and Q
    /// places counted as zeroes.
    pub ddf: bool,
}

impl Geometry {
    /// `conf->max_degraded`.
    pub fn max_degraded(&self) -> usize {
        if self.level == 6 { 2 } else { 1 }
    }

    pub fn data_disks(&self) -> usize {
        self.raid_disks - self.max_degraded()
    }

    /// `raid5_compute_sector`: array sector `r_sector` lies on member
    /// `dd_idx` at sector `new_sector` (from its data offset), in the
    /// stripe described.  The algorithm must be valid for the level and
    /// `raid_disks` above `max_degraded` (checked at run).
    pub fn compute_sector(&self, r_sector: u64) -> (u64, usize, Stripe) {
        let chunk_offset = r_sector % self.chunk_sectors;
        let chunk_number = r_sector / self.chunk_sectors;
        let data_disks = self.data_disks() as u64;
        let stripe = chunk_number / data_disks;
        let dd = (chunk_number % data_disks) as usize;
        let (dd_idx, st) = self.place(stripe, dd);
        (stripe * self.chunk_sectors + chunk_offset, dd_idx, st)
    }

    /// The parity of stripe (chunk row) `stripe`.
    pub fn stripe(&self, stripe: u64) -> Stripe {
        self.place(stripe, 0).1
    }

    /// The member holding data chunk `dd` (0-based within the row) of
    /// stripe `stripe`, and the row's parity places.
    fn place(&self, stripe: u64, dd: usize) -> (usize, Stripe) {
        let rd = self.raid_disks;
        let data_disks = self.data_disks();
        let m = |n: usize| (stripe % n as u64) as usize;
        let mut dd_idx = dd;
        let mut qd_idx = None;
        let mut ddf = false;
        let pd_idx;
        match self.level {
            4 => pd_idx = data_disks,
            5 => match self.algorithm {
                LEFT_ASYMMETRIC | RIGHT_ASYMMETRIC => {
                    pd_idx = if self.algorithm == LEFT_ASYMMETRIC {
                        data_disks - m(rd)
                    } else {
                        m(rd)
                    };
                    if dd_idx >= pd_idx {
                        dd_idx += 1;
                    }
                }
                LEFT_SYMMETRIC | RIGHT_SYMMETRIC => {
                    pd_idx = if self.algorithm == LEFT_SYMMETRIC {
                        data_disks - m(rd)
                    } else {
                        m(rd)
                    };
                    dd_idx = (pd_idx + 1 + dd_idx) % rd;
                }
                PARITY_0 => {
                    pd_idx = 0;
                    dd_idx += 1;
                }
                _ => pd_idx = data_disks, // PARITY_N
            },
            _ => match self.algorithm {
                LEFT_ASYMMETRIC | RIGHT_ASYMMETRIC | ROTATING_ZERO_RESTART | ROTATING_N_RESTART => {
                    pd_idx = match self.algorithm {
                        LEFT_ASYMMETRIC => rd - 1 - m(rd),
                        ROTATING_N_RESTART => rd - 1 - ((stripe + 1) % rd as u64) as usize,
                        _ => m(rd),
                    };
                    if pd_idx == rd - 1 {
                        dd_idx += 1; // Q D D D P
                        qd_idx = Some(0);
                    } else {
                        qd_idx = Some(pd_idx + 1);
                        if dd_idx >= pd_idx {
                            dd_idx += 2; // D D P Q D
                        }
                    }
                    ddf = matches!(self.algorithm, ROTATING_ZERO_RESTART | ROTATING_N_RESTART);
                }
                LEFT_SYMMETRIC | RIGHT_SYMMETRIC => {
                    pd_idx = if self.algorithm == LEFT_SYMMETRIC {
                        rd - 1 - m(rd)
                    } else {
                        m(rd)
                    };
                    qd_idx = Some((pd_idx + 1) % rd);
                    dd_idx = (pd_idx + 2 + dd_idx) % rd;
                }
                PARITY_0 => {
                    pd_idx = 0;
                    qd_idx = Some(1);
                    dd_idx += 2;
                }
                ROTATING_N_CONTINUE => {
                    // left-symmetric with Q before P
                    pd_idx = rd - 1 - m(rd);
                    qd_idx = Some((pd_idx + rd - 1) % rd);
                    dd_idx = (pd_idx + 1 + dd_idx) % rd;
                    ddf = true;
                }
                LEFT_ASYMMETRIC_6 | RIGHT_ASYMMETRIC_6 => {
                    pd_idx = if self.algorithm == LEFT_ASYMMETRIC_6 {
                        data_disks - m(rd - 1)
                    } else {
                        m(rd - 1)
                    };
                    if dd_idx >= pd_idx {
                        dd_idx += 1;
                    }
                    qd_idx = Some(rd - 1);
                }
                LEFT_SYMMETRIC_6 | RIGHT_SYMMETRIC_6 => {
                    pd_idx = if self.algorithm == LEFT_SYMMETRIC_6 {
                        data_disks - m(rd - 1)
                    } else {
                        m(rd - 1)
                    };
                    dd_idx = (pd_idx + 1 + dd_idx) % (rd - 1);
                    qd_idx = Some(rd - 1);
                }
                PARITY_0_6 => {
                    pd_idx = 0;
                    dd_idx += 1;
                    qd_idx = Some(rd - 1);
                }
                _ => {
                    // PARITY_N
                    pd_idx = data_disks;
                    qd_idx = Some(data_disks + 1);
                }
            },
        }
        (
            dd_idx,
            Stripe {
                pd_idx,
                qd_idx,
                ddf,
            },
        )
    }

    /// `compute_blocknr`: the array sector held by member `i` at member
    /// sector `dev_sector` of a stripe laid out as `st`; None for a
    /// parity block.
    pub fn compute_blocknr(&self, st: &Stripe, dev_sector: u64, i: usize) -> Option<u64> {
        if i == st.pd_idx || Some(i) == st.qd_idx {
            return None;
        }
        let rd = self.raid_disks;
        let data_disks = self.data_disks();
        let pd = st.pd_idx;
        let mut i = i;
        match self.level {
            4 => {}
            5 => match self.algorithm {
                LEFT_ASYMMETRIC | RIGHT_ASYMMETRIC if i > pd => i -= 1,
                LEFT_SYMMETRIC | RIGHT_SYMMETRIC => {
                    if i < pd {
                        i += rd;
                    }
                    i -= pd + 1;
                }
                PARITY_0 => i -= 1,
                _ => {}
            },
            _ => match self.algorithm {
                LEFT_ASYMMETRIC | RIGHT_ASYMMETRIC | ROTATING_ZERO_RESTART | ROTATING_N_RESTART => {
                    if pd == rd - 1 {
                        i -= 1;
                    } else if i > pd {
                        i -= 2;
                    }
                }
                LEFT_SYMMETRIC | RIGHT_SYMMETRIC => {
                    if pd == rd - 1 {
                        i -= 1;
                    } else {
                        if i < pd {
                            i += rd;
                        }
                        i -= pd + 2;
                    }
                }
                PARITY_0 => i -= 2,
                ROTATING_N_CONTINUE => {
                    if pd == 0 {
                        i -= 1;
                    } else {
                        if i < pd {
                            i += rd;
                        }
                        i -= pd + 1;
                    }
                }
                LEFT_ASYMMETRIC_6 | RIGHT_ASYMMETRIC_6 if i > pd => i -= 1,
                LEFT_SYMMETRIC_6 | RIGHT_SYMMETRIC_6 => {
                    if i < pd {
                        i += data_disks + 1;
                    }
                    i -= pd + 1;
                }
                PARITY_0_6 => i -= 1,
                _ => {}
            },
        }
        let stripe = dev_sector / self.chunk_sectors;
        let chunk_offset = dev_sector % self.chunk_sectors;
        let chunk_number = stripe * data_disks as u64 + i as u64;
        Some(chunk_number * self.chunk_sectors + chunk_offset)
    }

    /// The syndrome order of a raid6 stripe (`set_syndrome_sources`):
    /// `syndrome_disks` (data places: `raid_disks - 2`, or `raid_disks`
    /// for DDF) and each member's place in it (P at `syndrome_disks`, Q
    /// after it).  In a DDF stripe the places of P and Q among the data
    /// are blocks of zeroes.
    pub fn syndrome_slots(&self, st: &Stripe) -> (usize, Vec<usize>) {
        let disks = self.raid_disks;
        let syndrome_disks = if st.ddf { disks } else { disks - 2 };
        // raid6_d0: DDF starts from the first member, md after Q.
        let d0 = match st.qd_idx {
            _ if st.ddf => 0,
            Some(q) if q != disks - 1 => q + 1,
            _ => 0,
        };
        let mut slots = vec![0; disks];
        let mut count = 0;
        for k in 0..disks {
            let i = (d0 + k) % disks;
            // raid6_idx_to_slot
            let slot = count;
            if st.ddf {
                count += 1;
            }
            slots[i] = if i == st.pd_idx {
                syndrome_disks
            } else if Some(i) == st.qd_idx {
                syndrome_disks + 1
            } else {
                if !st.ddf {
                    count += 1;
                }
                slot
            };
        }
        (syndrome_disks, slots)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAID5: [i32; 6] = [0, 1, 2, 3, 4, 5];
    const RAID6: [i32; 14] = [0, 1, 2, 3, 4, 5, 8, 9, 10, 16, 17, 18, 19, 20];

    fn every() -> Vec<Geometry> {
        let mut out = Vec::new();
        for rd in 2..9 {
            out.push(Geometry {
                level: 4,
                algorithm: 0,
                raid_disks: rd,
                chunk_sectors: 8,
            });
            for a in RAID5 {
                out.push(Geometry {
                    level: 5,
                    algorithm: a,
                    raid_disks: rd,
                    chunk_sectors: 8,
                });
            }
            if rd >= 4 {
                for a in RAID6 {
                    out.push(Geometry {
                        level: 6,
                        algorithm: a,
                        raid_disks: rd,
                        chunk_sectors: 16,
                    });
                }
            }
        }
        out
    }

    /// Row by row, which member holds data chunk k (or P, Q).
    fn rows(g: &Geometry, n: u64) -> Vec<String> {
        (0..n)
            .map(|row| {
                let mut cells = vec![String::new(); g.raid_disks];
                for k in 0..g.data_disks() as u64 {
                    let chunk = row * g.data_disks() as u64 + k;
                    let (_, dd, st) = g.compute_sector(chunk * g.chunk_sectors);
                    cells[dd] = format!("D{chunk}");
                    cells[st.pd_idx] = "P".into();
                    if let Some(q) = st.qd_idx {
                        cells[q] = "Q".into();
                    }
                }
                cells.join(" ")
            })
            .collect()
    }

    /// The tables of md(4) and raid5.c's comments.
    #[test]
    fn known_layouts() {
        let g = |level, algorithm, raid_disks| Geometry {
            level,
            algorithm,
            raid_disks,
            chunk_sectors: 8,
        };
        assert_eq!(
            rows(&g(5, LEFT_SYMMETRIC, 3), 3),
            ["D0 D1 P", "D3 P D2", "P D4 D5"]
        );
        assert_eq!(
            rows(&g(5, LEFT_ASYMMETRIC, 3), 3),
            ["D0 D1 P", "D2 P D3", "P D4 D5"]
        );
        assert_eq!(
            rows(&g(5, RIGHT_SYMMETRIC, 3), 3),
            ["P D0 D1", "D3 P D2", "D4 D5 P"]
        );
        assert_eq!(
            rows(&g(5, RIGHT_ASYMMETRIC, 3), 3),
            ["P D0 D1", "D2 P D3", "D4 D5 P"]
        );
        assert_eq!(rows(&g(5, PARITY_0, 3), 2), ["P D0 D1", "P D2 D3"]);
        assert_eq!(rows(&g(4, 0, 3), 2), ["D0 D1 P", "D2 D3 P"]);
        assert_eq!(
            rows(&g(6, LEFT_SYMMETRIC, 5), 5),
            [
                "Q D0 D1 D2 P",
                "D3 D4 D5 P Q",
                "D7 D8 P Q D6",
                "D11 P Q D9 D10",
                "P Q D12 D13 D14"
            ]
        );
        assert_eq!(
            rows(&g(6, ROTATING_N_RESTART, 5), 3),
            ["D0 D1 D2 P Q", "D3 D4 P Q D5", "D6 P Q D7 D8"]
        );
        assert_eq!(
            rows(&g(6, ROTATING_N_CONTINUE, 5), 3),
            ["D0 D1 D2 Q P", "D4 D5 Q P D3", "D8 Q P D6 D7"]
        );
        assert_eq!(
            rows(&g(6, ROTATING_ZERO_RESTART, 5), 3),
            ["P Q D0 D1 D2", "D3 P Q D4 D5", "D6 D7 P Q D8"]
        );
        assert_eq!(
            rows(&g(6, LEFT_SYMMETRIC_6, 5), 2),
            ["D0 D1 D2 P Q", "D4 D5 P D3 Q"]
        );
    }

    /// Every array sector maps to a data place of its row, each once,
    /// and compute_blocknr maps it back.
    #[test]
    fn round_trips() {
        for g in every() {
            let rows = 3 * g.raid_disks as u64;
            let mut seen = std::collections::HashSet::new();
            for r in (0..rows * g.data_disks() as u64 * g.chunk_sectors).step_by(3) {
                let (s, dd, st) = g.compute_sector(r);
                assert!(
                    dd < g.raid_disks && dd != st.pd_idx && Some(dd) != st.qd_idx,
                    "{g:?} {r}"
                );
                assert_eq!(st, g.stripe(s / g.chunk_sectors), "{g:?} {r}");
                assert!(seen.insert((dd, s)), "{g:?} {r}: two sectors on one place");
                assert_eq!(g.compute_blocknr(&st, s, dd), Some(r), "{g:?} {r}");
                assert_eq!(g.compute_blocknr(&st, s, st.pd_idx), None);
                if let Some(q) = st.qd_idx {
                    assert_ne!(q, st.pd_idx);
                    assert_eq!(g.compute_blocknr(&st, s, q), None);
                }
            }
        }
    }

    /// md's syndrome order starts after Q and skips P and Q; DDF's takes
    /// the members in order with P and Q as zeroes.
    #[test]
    fn syndrome_order() {
        for g in every().into_iter().filter(|g| g.level == 6) {
            for row in 0..g.raid_disks as u64 {
                let st = g.stripe(row);
                let (n, slots) = g.syndrome_slots(&st);
                assert_eq!(slots[st.pd_idx], n);
                assert_eq!(slots[st.qd_idx.unwrap()], n + 1);
                let mut data: Vec<usize> = (0..g.raid_disks)
                    .filter(|&i| i != st.pd_idx && Some(i) != st.qd_idx)
                    .map(|i| slots[i])
                    .collect();
                if st.ddf {
                    assert_eq!(n, g.raid_disks);
                    for (i, &slot) in slots.iter().enumerate() {
                        if i != st.pd_idx && Some(i) != st.qd_idx {
                            assert_eq!(slot, i, "{g:?}");
                        }
                    }
                } else {
                    data.sort_unstable();
                    assert_eq!(data, (0..n).collect::<Vec<_>>(), "{g:?} {row}");
                }
            }
        }
        let g = Geometry {
            level: 6,
            algorithm: LEFT_SYMMETRIC,
            raid_disks: 5,
            chunk_sectors: 8,
        };
        // Row 2 is "D7 D8 P Q D6": the syndrome starts after Q, with D6;
        // row 1, "D3 D4 D5 P Q", with the first member.
        assert_eq!(g.syndrome_slots(&g.stripe(2)), (3, vec![1, 2, 3, 4, 0]));
        assert_eq!(g.syndrome_slots(&g.stripe(1)), (3, vec![0, 1, 2, 3, 4]));
    }
}
