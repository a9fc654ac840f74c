//! Personalities reach md only by registration (`register_md_personality`):
//! with none registered, running real md's RAID1 fixture fails with the
//! kernel's "personality for level 1 is not loaded!" and mdstat lists no
//! personality; once the program's list is registered, the same members
//! run and mdstat lists them in registration order.  Runs the md core and
//! its tree in process (no FUSE).

mod common;

use mdfuse::md::{Md, MdOptions};
use mdfuse::sysfs::MdTree;

fn personalities_line(tree: &MdTree) -> String {
    let mdstat = tree.tree.read_attr("mdstat").unwrap();
    mdstat.lines().next().unwrap_or_default().to_owned()
}

#[test]
fn a_level_runs_only_once_registered() {
    let (_dir, legs) = common::unpack("raid1-v1.2-nobitmap");
    let md = Md::new(MdOptions::default());
    let tree = MdTree::new(md.clone(), 0, 0);
    let t = &tree.tree;

    t.write_attr("new_array", "md0").unwrap();
    for l in &legs {
        t.write_attr("md0/md/new_dev", l.to_str().unwrap()).unwrap();
    }
    assert_eq!(personalities_line(&tree).trim_end(), "Personalities :");
    assert_eq!(
        t.write_attr("md0/md/array_state", "active"),
        Err(mdfuse::errno::Errno::EINVAL)
    );
    assert_eq!(
        md.log
            .grep("md: personality for level 1 is not loaded!")
            .len(),
        1,
        "log:\n{}",
        md.log.contents()
    );
    assert_eq!(t.read_attr("md0/md/array_state").unwrap(), "inactive\n");

    mdfuse::register_personalities(&md);
    // Twice is harmless: the list keeps one entry each.
    mdfuse::register_personalities(&md);
    let names: Vec<String> = mdfuse::PERSONALITIES
        .iter()
        .map(|p| format!("[{}]", p.name()))
        .collect();
    assert_eq!(
        personalities_line(&tree).trim_end(),
        format!("Personalities : {}", names.join(" "))
    );
    assert!(names.contains(&"[raid1]".to_owned()));
    t.write_attr("md0/md/array_state", "active").unwrap();
    assert_eq!(t.read_attr("md0/md/level").unwrap(), "raid1\n");
    md.stop_all();
}
