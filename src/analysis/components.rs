//! Connected components of a binary mask (2-D or 3-D, C order), streamed slab by slab along
//! axis 0, equal to `scipy.ndimage.label`.
//!
//! - **connectivity**: [`Connectivity::Face`] joins voxels that share a face (4 in 2-D, 6 in
//!   3-D; scipy's default structure `generate_binary_structure(rank, 1)`),
//!   [`Connectivity::Full`] also those that share an edge or a corner (8 / 26;
//!   `generate_binary_structure(rank, rank)`).
//! - **components**: the count, and per component its size (voxels), the flat C-order index of
//!   its first voxel and whether it touches the border of the array. Ordered by their first
//!   voxel, the components are in scipy's label order: component `i` is label `i + 1` and its
//!   size is `np.bincount(labels.ravel())[i + 1]`.
//! - **border**: a component touches the border when one of its voxels has index 0 or `n - 1`
//!   along some axis (pores cut by the field of view). Along an axis of length 1 every voxel
//!   does.
//! - **boundary faces**: faces between a mask voxel and a non-mask voxel that are neighbours
//!   along an axis, counted per axis (`count_nonzero(diff(mask, axis=a))`) and in total. The
//!   outside of the array does *not* count as non-mask: a mask touching the border has no faces
//!   there, and an all-true mask has none. The specific surface is faces / mask voxels.
//!
//! Streaming: [`ComponentPartial::of`] labels one slab of consecutive rows along axis 0 alone
//! and keeps only what a merge needs: the finished components (size, first voxel, border flag),
//! the components still open (those on a first or last row of the slab that has a neighbour
//! slab), and the labels of the slab's first and last row, run-length encoded (runs along the
//! last axis, each with its open component). [`ComponentPartial::merge`] joins adjacent
//! partials with a union-find over the open components of the two rows that meet (with `Full`,
//! diagonal neighbours across the rows count), counts the faces between those rows (once: a
//! slab counts only faces between its own rows), and closes the components that can no longer
//! grow. A partial holds O(runs of two rows + open components) beyond the list of finished
//! components, a merge costs as much, and the merge of any partition of the rows equals the
//! whole mask exactly, in any grouping (sequential or as a tree) as long as each merge joins
//! adjacent partials in row order. [`components`] labels a whole mask that way, slabs in
//! parallel on the rayon pool.
//!
//! Within a slab the labelling is run-based: the runs of mask voxels along the last axis of
//! every line are joined with the overlapping runs of the preceding neighbour lines (one or two
//! lines for `Face`, two or four for `Full`, whose overlaps are widened by one voxel) in a
//! union-find that links to the smaller run index, with path splicing (Rem's algorithm; M. M. A.
//! Patwary, J. Blair, F. Manne, "Experiments on union-find algorithms for the disjoint-set data
//! structure", SEA 2010, LNCS 6049, 411-423). The root of a component is then its first run,
//! so one in-place pass numbers the components in label order. Boundary faces come from the
//! same walk: `|A| + |B| - 2 |A ∩ B|` between neighbour lines, run ends along the last axis.

use std::ops::Range;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Which neighbours are connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Connectivity {
    /// Voxels sharing a face: 4 neighbours in 2-D, 6 in 3-D (scipy's default structure).
    Face,
    /// Voxels sharing a face, an edge or a corner: 8 neighbours in 2-D, 26 in 3-D.
    Full,
}

impl Connectivity {
    /// `"face"` or `"full"`.
    pub fn parse(name: &str) -> Result<Connectivity, String> {
        match name {
            "face" => Ok(Connectivity::Face),
            "full" => Ok(Connectivity::Full),
            _ => Err(format!(
                "unknown connectivity '{name}' (expected face or full)"
            )),
        }
    }

    /// The name [`Connectivity::parse`] reads.
    pub fn name(self) -> &'static str {
        match self {
            Connectivity::Face => "face",
            Connectivity::Full => "full",
        }
    }

    /// Number of neighbours of a voxel in `rank` dimensions (4, 6, 8 or 26 for rank 2 or 3).
    pub fn neighbours(self, rank: usize) -> usize {
        match self {
            Connectivity::Face => 2 * rank,
            Connectivity::Full => 3usize.pow(rank as u32) - 1,
        }
    }
}

/// Element types a mask may have: `bool`, or `u8` where any nonzero value is in the mask.
pub trait MaskElement: bytemuck::NoUninit + Sync + sealed::Sealed {}

impl MaskElement for u8 {}
impl MaskElement for bool {}

mod sealed {
    pub trait Sealed {}
    impl Sealed for u8 {}
    impl Sealed for bool {}
}

/// One connected component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Component {
    /// Number of voxels.
    pub size: u64,
    /// Flat C-order index of its first voxel (the components' label order).
    pub first_voxel: u64,
    /// Whether one of its voxels lies on the border of the array.
    pub touches_border: bool,
}

impl Component {
    fn absorb(&mut self, other: &Component) {
        self.size += other.size;
        self.first_voxel = self.first_voxel.min(other.first_voxel);
        self.touches_border |= other.touches_border;
    }
}

/// The connected components of a mask (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Components {
    /// Connectivity used.
    pub connectivity: Connectivity,
    /// Number of components.
    pub count: usize,
    /// Sizes of all components, ascending.
    pub sizes: Vec<u64>,
    /// The components in scipy's label order (by first voxel): entry `i` is label `i + 1`.
    pub components: Vec<Component>,
    /// Number of components that touch the border of the array.
    pub touching_border: usize,
    /// Number of mask voxels (the sum of the sizes).
    pub volume: u64,
    /// Faces between a mask and a non-mask voxel, over all axes.
    pub boundary_faces: u64,
    /// Faces between a mask and a non-mask voxel along each axis.
    pub boundary_faces_per_axis: Vec<u64>,
}

impl Components {
    /// Whether each component touches the border, in label order.
    pub fn touches_border(&self) -> Vec<bool> {
        self.components.iter().map(|c| c.touches_border).collect()
    }

    /// Boundary faces per mask voxel; `None` for an empty mask.
    pub fn specific_surface(&self) -> Option<f64> {
        (self.volume > 0).then(|| self.boundary_faces as f64 / self.volume as f64)
    }
}

/// The components of the rows of a slab, mergeable with the partials of adjacent slabs.
/// Read from bytes (a partial another process wrote), it must pass [`ComponentPartial::check`]
/// before it is merged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentPartial {
    connectivity: Connectivity,
    /// Shape of a row (the mask's shape without axis 0).
    row_shape: Vec<usize>,
    first_row: usize,
    rows: usize,
    total_rows: usize,
    /// Components that can no longer grow.
    closed: Vec<Component>,
    /// Components on a first or last row that adjoins another slab.
    open: Vec<Component>,
    /// The first row, when it adjoins rows of another slab (not row 0 of the mask).
    top: Option<BorderRow>,
    /// The last row, when it adjoins rows of another slab (not the mask's last row).
    bottom: Option<BorderRow>,
    /// Boundary faces along each axis between voxels of these rows.
    faces: Vec<u64>,
    /// Mask voxels.
    volume: u64,
}

/// A row of a partial at a slab boundary: its runs of mask voxels along the last axis, line by
/// line, each labelled with its open component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct BorderRow {
    /// Index of the first run of each line of the row, and the number of runs at the end.
    line_start: Vec<usize>,
    /// Start and end (exclusive) of each run.
    runs: Vec<[u32; 2]>,
    /// Index of each run's component in the partial's open components.
    labels: Vec<u32>,
}

impl BorderRow {
    fn line(&self, y: usize) -> &[[u32; 2]] {
        &self.runs[self.line_start[y]..self.line_start[y + 1]]
    }

    fn line_labels(&self, y: usize) -> &[u32] {
        &self.labels[self.line_start[y]..self.line_start[y + 1]]
    }

    fn voxels(&self, y: usize) -> u64 {
        self.line(y).iter().map(|&[s, e]| (e - s) as u64).sum()
    }

    /// Checks the row of `ny` lines of `nx` voxels of a partial with `open` open components
    /// (see [`ComponentPartial::check`]).
    fn check(&self, ny: usize, nx: usize, open: usize) -> Result<(), String> {
        let starts = &self.line_start;
        if starts.len() != ny + 1
            || starts[0] != 0
            || starts.windows(2).any(|w| w[0] > w[1])
            || starts[ny] != self.runs.len()
            || self.labels.len() != self.runs.len()
        {
            return Err(format!(
                "{} runs, {} labels and line starts {starts:?} for {ny} lines",
                self.runs.len(),
                self.labels.len()
            ));
        }
        if let Some(label) = self.labels.iter().find(|&&l| l as usize >= open) {
            return Err(format!("label {label} of {open} open components"));
        }
        for y in 0..ny {
            let mut after = 0;
            for &[s, e] in self.line(y) {
                if s < after || s >= e || e as usize > nx {
                    return Err(format!(
                        "run {s}..{e} of line {y} (of {nx} voxels) after voxel {after}"
                    ));
                }
                after = e + 1;
            }
        }
        Ok(())
    }
}

fn check_rank(shape: &[usize]) -> Result<(), String> {
    if !(2..=3).contains(&shape.len()) {
        return Err(format!(
            "connected components need a 2-D or 3-D mask, not shape {shape:?}"
        ));
    }
    Ok(())
}

impl ComponentPartial {
    /// The partial of one slab: `mask_slab` in C order with shape `slab_shape` (rank 2 or 3),
    /// rows `first_row..first_row + slab_shape[0]` of a mask with `total_rows` rows along
    /// axis 0. A slab may have 0 rows.
    pub fn of<T: MaskElement>(
        mask_slab: &[T],
        slab_shape: &[usize],
        first_row: usize,
        total_rows: usize,
        connectivity: Connectivity,
    ) -> Result<ComponentPartial, String> {
        check_rank(slab_shape)?;
        let mask: &[u8] = bytemuck::cast_slice(mask_slab);
        let voxels = slab_shape
            .iter()
            .try_fold(1usize, |a, &n| a.checked_mul(n))
            .ok_or_else(|| format!("slab shape {slab_shape:?} is too large"))?;
        if mask.len() != voxels {
            return Err(format!(
                "mask slab has {} values, shape {slab_shape:?} needs {voxels}",
                mask.len()
            ));
        }
        let rows = slab_shape[0];
        if first_row
            .checked_add(rows)
            .is_none_or(|end| end > total_rows)
        {
            return Err(format!(
                "rows {first_row}..{} lie beyond the {total_rows} rows of the mask",
                first_row.saturating_add(rows)
            ));
        }
        let rank = slab_shape.len();
        let (ny, nx) = if rank == 3 {
            (slab_shape[1], slab_shape[2])
        } else {
            (1, slab_shape[1])
        };
        if nx >= u32::MAX as usize {
            return Err(format!(
                "rows of {nx} voxels along the last axis are too long"
            ));
        }
        let geometry = Geometry {
            rows,
            ny,
            nx,
            y_is_axis: rank == 3,
            top_is_border: first_row == 0,
            bottom_is_border: first_row + rows == total_rows,
        };
        let slab = label_slab(mask, &geometry, connectivity)?;

        // Open components: on a first or last row that has a neighbour row in another slab.
        let keep_top = rows > 0 && first_row > 0;
        let keep_bottom = rows > 0 && first_row + rows < total_rows;
        const CLOSED: u32 = u32::MAX;
        let mut index = vec![CLOSED; slab.components.len()];
        let mut open = Vec::new();
        let mut border_row = |z: usize| {
            let mut row = BorderRow {
                line_start: vec![0],
                runs: Vec::new(),
                labels: Vec::new(),
            };
            for y in 0..ny {
                let runs = slab.line_runs(z * ny + y);
                for &c in &slab.labels[runs.clone()] {
                    let c = c as usize;
                    if index[c] == CLOSED {
                        index[c] = open.len() as u32;
                        open.push(c);
                    }
                    row.labels.push(index[c]);
                }
                row.runs.extend_from_slice(&slab.runs[runs]);
                row.line_start.push(row.runs.len());
            }
            row
        };
        let top = keep_top.then(|| border_row(0));
        let bottom = keep_bottom.then(|| border_row(rows - 1));
        let offset = (first_row * ny * nx) as u64;
        let global = |c: &Component| Component {
            first_voxel: c.first_voxel + offset,
            ..*c
        };
        let closed = slab
            .components
            .iter()
            .zip(&index)
            .filter(|&(_, &i)| i == CLOSED)
            .map(|(c, _)| global(c))
            .collect();
        let open = open.iter().map(|&c| global(&slab.components[c])).collect();
        let faces = if rank == 3 {
            slab.faces.to_vec()
        } else {
            vec![slab.faces[0], slab.faces[2]]
        };
        Ok(ComponentPartial {
            connectivity,
            row_shape: slab_shape[1..].to_vec(),
            first_row,
            rows,
            total_rows,
            closed,
            open,
            top,
            bottom,
            faces,
            volume: slab.volume,
        })
    }

    /// Checks what [`ComponentPartial::merge`] and [`ComponentPartial::finish`] rely on, as
    /// [`ComponentPartial::of`] makes it: a 2-D or 3-D mask whose rows include these; counts
    /// within the voxels of the rows (so that sums of partials never overflow), the component
    /// sizes adding up to the volume, first voxels within the rows; a border row exactly
    /// where a neighbour slab can be, with one list of runs per line, each run inside the line
    /// and after the previous one by at least a voxel, each labelled with an open component.
    pub fn check(&self) -> Result<(), String> {
        let rank = self.row_shape.len() + 1;
        let (ny, nx) = match self.row_shape[..] {
            [nx] => (1, nx),
            [ny, nx] => (ny, nx),
            _ => return Err(format!("a mask of rank {rank}, not 2 or 3")),
        };
        let end = self.first_row.checked_add(self.rows);
        let row_voxels = (ny as u64).checked_mul(nx as u64);
        let (Some(end), Some(row_voxels), true) = (end, row_voxels, nx < u32::MAX as usize) else {
            return Err(format!(
                "rows {} + {} of shape {:?} are too large",
                self.first_row, self.rows, self.row_shape
            ));
        };
        if end > self.total_rows {
            return Err(format!(
                "rows {}..{end} beyond the {} rows of the mask",
                self.first_row, self.total_rows
            ));
        }
        let Some(total_voxels) = (self.total_rows as u64).checked_mul(row_voxels) else {
            return Err(format!(
                "a mask of {} rows of shape {:?} is too large",
                self.total_rows, self.row_shape
            ));
        };
        let (first, voxels) = (
            self.first_row as u64 * row_voxels,
            self.rows as u64 * row_voxels,
        );
        if self.faces.len() != rank {
            return Err(format!(
                "{} face counts for a mask of rank {rank}",
                self.faces.len()
            ));
        }
        if let Some(count) = self
            .faces
            .iter()
            .chain([&self.volume])
            .find(|&&n| n > voxels)
        {
            return Err(format!("a count of {count} in rows of {voxels} voxels"));
        }
        let mut sizes = 0u64;
        for c in self.closed.iter().chain(&self.open) {
            sizes = sizes.saturating_add(c.size);
            if !(first..first + voxels).contains(&c.first_voxel) || total_voxels <= c.first_voxel {
                return Err(format!(
                    "a component starts at voxel {} outside the rows",
                    c.first_voxel
                ));
            }
        }
        if sizes != self.volume {
            return Err(format!(
                "components of {sizes} voxels in all, but a volume of {}",
                self.volume
            ));
        }
        for (row, expected, name) in [
            (&self.top, self.rows > 0 && self.first_row > 0, "first"),
            (&self.bottom, self.rows > 0 && end < self.total_rows, "last"),
        ] {
            match row {
                Some(row) if expected => row
                    .check(ny, nx, self.open.len())
                    .map_err(|e| format!("its {name} row: {e}"))?,
                None if !expected => {}
                _ => {
                    return Err(format!(
                        "its {name} row is {}kept, where rows {}..{end} of {} need it {}",
                        if expected { "not " } else { "" },
                        self.first_row,
                        self.total_rows,
                        if expected {
                            "for a merge"
                        } else {
                            "only beside another slab"
                        }
                    ));
                }
            }
        }
        Ok(())
    }

    /// Rows of the mask this partial covers.
    pub fn rows(&self) -> Range<usize> {
        self.first_row..self.first_row + self.rows
    }

    /// Whether it covers every row of the mask.
    pub fn is_complete(&self) -> bool {
        self.first_row == 0 && self.rows == self.total_rows
    }

    /// Number of components that may still grow when adjacent rows are merged.
    pub fn open_components(&self) -> usize {
        self.open.len()
    }

    /// Number of components that can no longer grow.
    pub fn closed_components(&self) -> usize {
        self.closed.len()
    }

    /// Adds the partial of the rows that follow (`next` starts where `self` ends): joins the
    /// components of the two rows that meet and counts the faces between them.
    pub fn merge(&mut self, next: &ComponentPartial) -> Result<(), String> {
        if next.connectivity != self.connectivity {
            return Err(format!(
                "cannot merge components of {} connectivity into {} connectivity",
                next.connectivity.name(),
                self.connectivity.name()
            ));
        }
        if next.row_shape != self.row_shape || next.total_rows != self.total_rows {
            return Err(format!(
                "cannot merge rows of shape {:?} of a mask of {} rows into rows of shape {:?} \
                 of a mask of {} rows",
                next.row_shape, next.total_rows, self.row_shape, self.total_rows
            ));
        }
        if next.first_row != self.first_row + self.rows {
            return Err(format!(
                "cannot merge rows {:?} after rows {:?}: partials must be adjacent and in order",
                next.rows(),
                self.rows()
            ));
        }
        if next.rows == 0 {
            return Ok(());
        }
        if self.rows == 0 {
            *self = next.clone();
            return Ok(());
        }
        let (Some(above), Some(below)) = (&self.bottom, &next.top) else {
            return Err(format!(
                "the partials of rows {:?} and {:?} lack the rows where they meet",
                self.rows(),
                next.rows()
            ));
        };
        let n1 = self.open.len();
        let mut parent: Vec<u32> = (0..(n1 + next.open.len()) as u32).collect();
        let ny = above.line_start.len() - 1;
        let widen = match self.connectivity {
            Connectivity::Face => 0,
            Connectivity::Full => 1,
        };
        let mut faces = 0u64;
        for y in 0..ny {
            // Line y above touches lines y (and with `Full` y - 1 and y + 1) below.
            for yy in y.saturating_sub(widen as usize)..(y + 1 + widen as usize).min(ny) {
                let (a, b) = (above.line_labels(y), below.line_labels(yy));
                let shared = overlaps(above.line(y), below.line(yy), widen, |i, j| {
                    union(&mut parent, a[i], n1 as u32 + b[j])
                });
                if yy == y {
                    faces += above.voxels(y) + below.voxels(y) - 2 * shared;
                }
            }
        }

        // Gather each set at its root.
        let mut joined: Vec<Component> = self.open.iter().chain(&next.open).copied().collect();
        for i in 0..joined.len() {
            let root = find(&mut parent, i as u32) as usize;
            if root != i {
                let c = joined[i];
                joined[root].absorb(&c);
            }
        }
        // The sets on the new first and last rows stay open, in order of appearance.
        const CLOSED: u32 = u32::MAX;
        let mut index = vec![CLOSED; joined.len()];
        let mut open = Vec::new();
        let mut relabel = |row: &Option<BorderRow>, shift: u32, parent: &mut [u32]| {
            row.as_ref().map(|row| BorderRow {
                labels: row
                    .labels
                    .iter()
                    .map(|&l| {
                        let root = find(parent, shift + l) as usize;
                        if index[root] == CLOSED {
                            index[root] = open.len() as u32;
                            open.push(joined[root]);
                        }
                        index[root]
                    })
                    .collect(),
                line_start: row.line_start.clone(),
                runs: row.runs.clone(),
            })
        };
        let top = relabel(&self.top, 0, &mut parent);
        let bottom = relabel(&next.bottom, n1 as u32, &mut parent);
        for (i, c) in joined.iter().enumerate() {
            if parent[i] as usize == i && index[i] == CLOSED {
                self.closed.push(*c);
            }
        }
        self.closed.extend_from_slice(&next.closed);
        self.open = open;
        self.top = top;
        self.bottom = bottom;
        for (a, b) in self.faces.iter_mut().zip(&next.faces) {
            *a += b;
        }
        self.faces[0] += faces;
        self.volume += next.volume;
        self.rows += next.rows;
        Ok(())
    }

    /// The components of the rows covered (all of them, once every row is merged in).
    pub fn finish(self) -> Components {
        let mut components = self.closed;
        components.extend(self.open);
        // Stable sort: the list is a concatenation of sorted runs (one per slab), which it
        // merges.
        components.sort_by_key(|c| c.first_voxel);
        let sizes = sorted_sizes(&components);
        Components {
            connectivity: self.connectivity,
            count: components.len(),
            touching_border: components.iter().filter(|c| c.touches_border).count(),
            sizes,
            components,
            volume: self.volume,
            boundary_faces: self.faces.iter().sum(),
            boundary_faces_per_axis: self.faces,
        }
    }
}

/// The components of a whole mask (C order, shape of rank 2 or 3): slabs labelled in parallel
/// on the rayon pool, merged in row order.
pub fn components<T: MaskElement>(
    mask: &[T],
    shape: &[usize],
    connectivity: Connectivity,
) -> Result<Components, String> {
    check_rank(shape)?;
    let rows = shape[0];
    let row_size: usize = shape[1..].iter().product();
    if rows.checked_mul(row_size) != Some(mask.len()) {
        return Err(format!(
            "mask has {} values, shape {shape:?} needs {}",
            mask.len(),
            shape.iter().map(|&n| n as f64).product::<f64>()
        ));
    }
    // A few slabs per thread balance the load; each merge costs O(runs in a row).
    let parts = (4 * rayon::current_num_threads()).min(rows / 4).max(1);
    let cuts: Vec<usize> = (0..=parts).map(|i| i * rows / parts).collect();
    let partials: Vec<Result<ComponentPartial, String>> = cuts
        .par_windows(2)
        .map(|w| {
            let mut slab_shape = shape.to_vec();
            slab_shape[0] = w[1] - w[0];
            ComponentPartial::of(
                &mask[w[0] * row_size..w[1] * row_size],
                &slab_shape,
                w[0],
                rows,
                connectivity,
            )
        })
        .collect();
    let partials = partials.into_iter().collect::<Result<Vec<_>, _>>()?;
    let mut partials = partials.into_iter();
    let mut whole = partials.next().expect("at least one slab");
    // Room for every component at once: the list does not grow (and copy) while merging.
    let all: usize = partials
        .as_slice()
        .iter()
        .map(|p| p.closed.len() + p.open.len())
        .sum();
    whole.closed.reserve_exact(all + whole.open.len());
    for p in partials {
        whole.merge(&p)?;
    }
    Ok(whole.finish())
}

/// The sizes of `components`, ascending: small sizes counted, large ones sorted.
fn sorted_sizes(components: &[Component]) -> Vec<u64> {
    const SMALL: u64 = 1 << 12;
    if components.len() < SMALL as usize {
        let mut sizes: Vec<u64> = components.iter().map(|c| c.size).collect();
        sizes.sort_unstable();
        return sizes;
    }
    let mut counts = vec![0usize; SMALL as usize];
    let mut large = Vec::new();
    for c in components {
        if c.size < SMALL {
            counts[c.size as usize] += 1;
        } else {
            large.push(c.size);
        }
    }
    large.sort_unstable();
    let mut sizes = Vec::with_capacity(components.len());
    for (size, &n) in counts.iter().enumerate() {
        sizes.extend(std::iter::repeat_n(size as u64, n));
    }
    sizes.extend(large);
    sizes
}

/// A slab as `rows` x `ny` lines of `nx` voxels (2-D masks have `ny = 1`).
struct Geometry {
    rows: usize,
    ny: usize,
    nx: usize,
    /// Whether the middle axis is an axis of the mask (3-D) or a stand-in of length 1 (2-D).
    y_is_axis: bool,
    /// Whether the slab's first row is the mask's first row.
    top_is_border: bool,
    /// Whether the slab's last row is the mask's last row.
    bottom_is_border: bool,
}

/// The labelled runs of a slab.
struct Slab {
    /// Start and end (exclusive) of the runs along the last axis, in raster order.
    runs: Vec<[u32; 2]>,
    /// Index of the first run of each line, and the number of runs at the end.
    line_start: Vec<usize>,
    /// Component of each run.
    labels: Vec<u32>,
    /// Components in label order, first voxels relative to the slab.
    components: Vec<Component>,
    /// Boundary faces along the row axis, the middle axis, the last axis.
    faces: [u64; 3],
    volume: u64,
}

impl Slab {
    fn line_runs(&self, line: usize) -> Range<usize> {
        self.line_start[line]..self.line_start[line + 1]
    }
}

/// Bit `i` set where byte `i` of the little-endian word `w` is nonzero.
fn nonzero_bytes(w: u64) -> u32 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    // High bit of each byte: set where the byte is nonzero (no carry crosses bytes).
    let high = (((w & LOW7) + LOW7) | w) & !LOW7;
    // Gathers bit 8i + 7 to bit 56 + i (movemask).
    ((high >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56) as u32
}

/// Appends the runs of nonzero bytes of `line` to `runs`; `edges` is scratch space. Eight bytes
/// at a time: a bit mask of the bytes where the mask changes, walked by its set bits.
fn find_runs(line: &[u8], edges: &mut Vec<u32>, runs: &mut Vec<[u32; 2]>) {
    edges.clear();
    edges.resize(line.len() + 1, 0);
    let mut k = 0;
    let mut inside = 0u32;
    let (words, tail) = line.as_chunks::<8>();
    let mut mark = |x: usize, bits: u32, n: u32, inside: &mut u32| {
        let mut changes = (bits ^ ((bits << 1) | *inside)) & ((1 << n) - 1);
        while changes != 0 {
            edges[k] = x as u32 + changes.trailing_zeros();
            k += 1;
            changes &= changes - 1;
        }
        *inside = (bits >> (n - 1)) & 1;
    };
    for (i, word) in words.iter().enumerate() {
        mark(
            8 * i,
            nonzero_bytes(u64::from_le_bytes(*word)),
            8,
            &mut inside,
        );
    }
    if !tail.is_empty() {
        let mut word = [0u8; 8];
        word[..tail.len()].copy_from_slice(tail);
        let bits = nonzero_bytes(u64::from_le_bytes(word));
        mark(8 * words.len(), bits, tail.len() as u32, &mut inside);
    }
    if inside == 1 {
        edges[k] = line.len() as u32;
        k += 1;
    }
    let (pairs, _) = edges[..k].as_chunks::<2>();
    runs.extend_from_slice(pairs);
}

/// Number of runs of nonzero bytes in the lines of `nx` bytes of `mask`.
fn count_runs(mask: &[u8], nx: usize) -> usize {
    mask.chunks_exact(nx.max(1))
        .map(|line| {
            // Byte lanes summed over at most 255 pairs do not overflow, and vectorise.
            let starts: usize = line
                .chunks(256)
                .zip(line.get(1..).unwrap_or_default().chunks(256))
                .map(|(a, b)| {
                    let lanes = a.iter().zip(b);
                    lanes.fold(0u8, |n, (&a, &b)| n + ((a == 0) & (b != 0)) as u8) as usize
                })
                .sum();
            starts + (line.first().is_some_and(|&v| v != 0)) as usize
        })
        .sum()
}

/// Joins `x` and `y`, linking to the smaller index with path splicing (Rem's algorithm): every
/// `parent[i] <= i`, so a set's root is its smallest member.
#[inline]
fn union(parent: &mut [u32], mut x: u32, mut y: u32) {
    loop {
        let (px, py) = (parent[x as usize], parent[y as usize]);
        if px == py {
            return;
        }
        if px > py {
            parent[x as usize] = py;
            if px == x {
                return;
            }
            x = px;
        } else {
            parent[y as usize] = px;
            if py == y {
                return;
            }
            y = py;
        }
    }
}

/// Root of `x`, halving the path.
fn find(parent: &mut [u32], mut x: u32) -> u32 {
    while parent[x as usize] != x {
        let grandparent = parent[parent[x as usize] as usize];
        parent[x as usize] = grandparent;
        x = grandparent;
    }
    x
}

/// Calls `join(i, j)` for the runs `a[i]` of a line and `b[j]` of a neighbour line that overlap
/// (`widen` = 1: or touch diagonally); returns the number of voxels the lines share.
#[inline]
fn overlaps(a: &[[u32; 2]], b: &[[u32; 2]], widen: u32, mut join: impl FnMut(usize, usize)) -> u64 {
    let (mut i, mut j) = (0, 0);
    let mut shared = 0u64;
    while i < a.len() && j < b.len() {
        let ([sa, ea], [sb, eb]) = (a[i], b[j]);
        shared += ea.min(eb).saturating_sub(sa.max(sb)) as u64;
        if sa < eb + widen && sb < ea + widen {
            join(i, j);
        }
        // Advance past the run that ends first; runs of a line are at least one voxel apart.
        i += (ea <= eb) as usize;
        j += (eb <= ea) as usize;
    }
    shared
}

/// Joins the runs `a` of a line with the overlapping runs `b` of a preceding neighbour line;
/// returns the number of voxels the lines share.
#[inline]
fn join_lines(
    runs: &[[u32; 2]],
    parent: &mut [u32],
    a: Range<usize>,
    b: Range<usize>,
    widen: u32,
) -> u64 {
    let (first_a, first_b) = (a.start as u32, b.start as u32);
    overlaps(&runs[a], &runs[b], widen, |i, j| {
        union(parent, first_a + i as u32, first_b + j as u32)
    })
}

/// Labels the mask voxels of a slab (see the module documentation).
fn label_slab(mask: &[u8], g: &Geometry, connectivity: Connectivity) -> Result<Slab, String> {
    let (rows, ny, nx) = (g.rows, g.ny, g.nx);
    let lines = rows * ny;
    // Counted first (a quick vectorised pass), so the runs are allocated once.
    let mut runs: Vec<[u32; 2]> = Vec::with_capacity(count_runs(mask, nx));
    let mut line_start = Vec::with_capacity(lines + 1);
    let mut line_voxels: Vec<u64> = Vec::with_capacity(lines);
    let mut edges = Vec::new();
    let mut faces = [0u64; 3];
    line_start.push(0);
    for line in mask.chunks_exact(nx.max(1)).take(lines) {
        let before = runs.len();
        find_runs(line, &mut edges, &mut runs);
        let mut voxels = 0;
        for &[s, e] in &runs[before..] {
            voxels += (e - s) as u64;
            faces[2] += (s > 0) as u64 + ((e as usize) < nx) as u64;
        }
        line_voxels.push(voxels);
        line_start.push(runs.len());
    }
    line_voxels.resize(lines, 0); // lines of no voxels (nx = 0)
    line_start.resize(lines + 1, runs.len());
    let n = runs.len();
    if n >= u32::MAX as usize {
        return Err(format!(
            "a slab of {rows} rows has {n} runs, too many: use thinner slabs"
        ));
    }
    let mut parent: Vec<u32> = (0..n as u32).collect();
    let widen = match connectivity {
        Connectivity::Face => 0,
        Connectivity::Full => 1,
    };
    let span = |l: usize| line_start[l]..line_start[l + 1];
    for z in 0..rows {
        for y in 0..ny {
            let l = z * ny + y;
            if y > 0 {
                let shared = join_lines(&runs, &mut parent, span(l), span(l - 1), widen);
                faces[1] += line_voxels[l] + line_voxels[l - 1] - 2 * shared;
            }
            if z > 0 {
                let above = l - ny;
                let shared = join_lines(&runs, &mut parent, span(l), span(above), widen);
                faces[0] += line_voxels[l] + line_voxels[above] - 2 * shared;
                if widen == 1 {
                    if y > 0 {
                        join_lines(&runs, &mut parent, span(l), span(above - 1), 1);
                    }
                    if y + 1 < ny {
                        join_lines(&runs, &mut parent, span(l), span(above + 1), 1);
                    }
                }
            }
        }
    }

    // Number the sets in raster order, in place: a run's parent precedes it, so its label is
    // already known; a root is its component's first run.
    let mut labels = parent;
    let mut components = Vec::new();
    for z in 0..rows {
        let row_border = (z == 0 && g.top_is_border) || (z + 1 == rows && g.bottom_is_border);
        for y in 0..ny {
            let l = z * ny + y;
            let line_border = row_border || (g.y_is_axis && (y == 0 || y + 1 == ny));
            for r in span(l) {
                let [s, e] = runs[r];
                let p = labels[r] as usize;
                let c = if p == r {
                    components.push(Component {
                        size: 0,
                        first_voxel: (l * nx) as u64 + s as u64,
                        touches_border: false,
                    });
                    components.len() - 1
                } else {
                    labels[p] as usize
                };
                labels[r] = c as u32;
                let c = &mut components[c];
                c.size += (e - s) as u64;
                c.touches_border |= line_border || s == 0 || e as usize == nx;
            }
        }
    }
    Ok(Slab {
        runs,
        line_start,
        labels,
        components,
        faces,
        volume: line_voxels.iter().sum(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Components by flood fill over the full neighbourhood, in label order, with faces per
    /// axis: a slow reference.
    fn reference(mask: &[bool], shape: &[usize], connectivity: Connectivity) -> Components {
        let rank = shape.len();
        let strides: Vec<usize> = (0..rank).map(|a| shape[a + 1..].iter().product()).collect();
        let coords =
            |i: usize| -> Vec<usize> { (0..rank).map(|a| i / strides[a] % shape[a]).collect() };
        let offsets: Vec<Vec<i64>> = (0..3i64.pow(rank as u32))
            .map(|k| {
                (0..rank)
                    .map(|a| k / 3i64.pow(a as u32) % 3 - 1)
                    .collect::<Vec<_>>()
            })
            .filter(|d: &Vec<i64>| {
                let nonzero = d.iter().filter(|&&v| v != 0).count();
                nonzero > 0 && (connectivity == Connectivity::Full || nonzero == 1)
            })
            .collect();
        let mut seen = vec![false; mask.len()];
        let mut components = Vec::new();
        for start in 0..mask.len() {
            if !mask[start] || seen[start] {
                continue;
            }
            seen[start] = true;
            let mut stack = vec![start];
            let mut c = Component {
                size: 0,
                first_voxel: start as u64,
                touches_border: false,
            };
            while let Some(i) = stack.pop() {
                let p = coords(i);
                c.size += 1;
                c.touches_border |= (0..rank).any(|a| p[a] == 0 || p[a] + 1 == shape[a]);
                for d in &offsets {
                    let q: Vec<i64> = (0..rank).map(|a| p[a] as i64 + d[a]).collect();
                    if (0..rank).any(|a| q[a] < 0 || q[a] >= shape[a] as i64) {
                        continue;
                    }
                    let j: usize = (0..rank).map(|a| q[a] as usize * strides[a]).sum();
                    if mask[j] && !seen[j] {
                        seen[j] = true;
                        stack.push(j);
                    }
                }
            }
            components.push(c);
        }
        let faces: Vec<u64> = (0..rank)
            .map(|a| {
                (0..mask.len())
                    .filter(|&i| coords(i)[a] + 1 < shape[a] && mask[i] != mask[i + strides[a]])
                    .count() as u64
            })
            .collect();
        let mut sizes: Vec<u64> = components.iter().map(|c| c.size).collect();
        sizes.sort_unstable();
        Components {
            connectivity,
            count: components.len(),
            sizes,
            touching_border: components.iter().filter(|c| c.touches_border).count(),
            volume: mask.iter().filter(|&&m| m).count() as u64,
            components,
            boundary_faces: faces.iter().sum(),
            boundary_faces_per_axis: faces,
        }
    }

    fn merged(mask: &[bool], shape: &[usize], cuts: &[usize], c: Connectivity) -> Components {
        let row: usize = shape[1..].iter().product();
        let mut whole: Option<ComponentPartial> = None;
        for w in cuts.windows(2) {
            let mut s = shape.to_vec();
            s[0] = w[1] - w[0];
            let p =
                ComponentPartial::of(&mask[w[0] * row..w[1] * row], &s, w[0], shape[0], c).unwrap();
            p.check()
                .unwrap_or_else(|e| panic!("{shape:?} {c:?} rows {w:?}: {e}"));
            match &mut whole {
                None => whole = Some(p),
                Some(acc) => acc.merge(&p).unwrap(),
            }
        }
        whole.unwrap().finish()
    }

    #[test]
    fn random_masks_equal_flood_fill_in_every_partition() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for trial in 0..300 {
            let shape: Vec<usize> = if trial % 2 == 0 {
                vec![rng.random_range(1..9), rng.random_range(1..9)]
            } else {
                vec![
                    rng.random_range(1..7),
                    rng.random_range(1..6),
                    rng.random_range(1..6),
                ]
            };
            let density = rng.random_range(0.05..0.95);
            let mask: Vec<bool> = (0..shape.iter().product::<usize>())
                .map(|_| rng.random_bool(density))
                .collect();
            for c in [Connectivity::Face, Connectivity::Full] {
                let want = reference(&mask, &shape, c);
                let rows = shape[0];
                let mut cuts = vec![0];
                while *cuts.last().unwrap() < rows {
                    let next = cuts.last().unwrap() + rng.random_range(0..3);
                    cuts.push(next.min(rows));
                }
                for cuts in [vec![0, rows], (0..=rows).collect(), cuts] {
                    let got = merged(&mask, &shape, &cuts, c);
                    assert_eq!(got, want, "{shape:?} {c:?} cuts {cuts:?}");
                }
                assert_eq!(components(&mask, &shape, c).unwrap(), want);
            }
        }
    }

    #[test]
    fn runs_are_found_at_both_ends_and_across_words() {
        let runs_of = |line: &[u8]| {
            let (mut edges, mut runs) = (Vec::new(), Vec::new());
            find_runs(line, &mut edges, &mut runs);
            runs
        };
        assert_eq!(
            runs_of(&[1, 1, 0, 0, 3, 0, 1]),
            vec![[0, 2], [4, 5], [6, 7]]
        );
        assert!(runs_of(&[0, 0]).is_empty());
        let mut line = vec![0u8; 40];
        line[3..21].fill(1);
        line[21] = 200;
        line[30..40].fill(1);
        assert_eq!(runs_of(&line), vec![[3, 22], [30, 40]]);
        line[8..16].fill(0);
        assert_eq!(runs_of(&line), vec![[3, 8], [16, 22], [30, 40]]);
        // Against a byte-by-byte scan, on random lines of every length up to 40.
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for _ in 0..2000 {
            let n = rng.random_range(0..41);
            let p = rng.random_range(0.0..1.0);
            let line: Vec<u8> = (0..n)
                .map(|_| {
                    if rng.random_bool(p) {
                        rng.random_range(1..=255)
                    } else {
                        0
                    }
                })
                .collect();
            let mut want = Vec::new();
            for x in 0..n {
                if line[x] != 0 && (x == 0 || line[x - 1] == 0) {
                    let end = (x..n).find(|&e| line[e] == 0).unwrap_or(n);
                    want.push([x as u32, end as u32]);
                }
            }
            assert_eq!(runs_of(&line), want, "{line:?}");
            assert_eq!(count_runs(&line, n.max(1)), want.len(), "{line:?}");
        }
        for pattern in 0..=255u32 {
            let bytes: [u8; 8] =
                std::array::from_fn(|i| ((pattern >> i) & 1) as u8 * (1 + i as u8 * 31));
            assert_eq!(nonzero_bytes(u64::from_le_bytes(bytes)), pattern);
        }
    }

    #[test]
    fn sizes_sort_by_counting_and_by_comparison_alike() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for n in [0, 5, 4095, 4096, 20000] {
            let components: Vec<Component> = (0..n)
                .map(|i| Component {
                    size: if i % 7 == 0 {
                        rng.random_range(1..1 << 20)
                    } else {
                        rng.random_range(1..50)
                    },
                    first_voxel: i,
                    touches_border: false,
                })
                .collect();
            let mut want: Vec<u64> = components.iter().map(|c| c.size).collect();
            want.sort_unstable();
            assert_eq!(sorted_sizes(&components), want, "{n} components");
        }
    }

    /// Fuzz target `unit_partials`: a porosity partial read from bytes whose first row held a
    /// run ending before it starts made the merge subtract past zero (a panic). Partials read
    /// from bytes are now checked, and every inconsistency the merge could trip on is refused
    /// with what is wrong.
    #[test]
    fn inconsistent_partials_read_from_bytes_are_refused() {
        use crate::analysis::porosity::PorosityPartial;
        use crate::analysis::testing;

        let (x, y) = testing::frames(8, 16);
        let porosity = testing::prepare(
            "[[analysis]]\nkind = \"porosity\"\nmethod = \"value\"\nvalue = 2.0\n",
            &x,
        );
        let fit = testing::fit(&*porosity, &y);
        let parts = testing::partials(&*porosity, &fit, &x, &y, &[4]);
        let bytes = porosity.encode_partial(&parts[1]).unwrap();
        let valid: PorosityPartial = postcard::from_bytes(&bytes).unwrap();
        assert!(porosity.decode_partial(&bytes).is_ok());
        fn top(p: &mut ComponentPartial) -> &mut BorderRow {
            p.top.as_mut().expect("a first row beside a slab")
        }
        type Tamper = fn(&mut ComponentPartial);
        let tampers: [(&str, Tamper, &str); 8] = [
            (
                "the fuzz finding",
                |p| top(p).runs[0].reverse(),
                "its first row: run ",
            ),
            (
                "a run past the line",
                |p| top(p).runs[0][1] = 17,
                "its first row: run ",
            ),
            (
                "a label beyond the open components",
                |p| {
                    let open = p.open.len() as u32;
                    top(p).labels[0] = open;
                },
                "its first row: label ",
            ),
            (
                "a line missing",
                |p| {
                    top(p).line_start.pop();
                },
                "its first row: ",
            ),
            ("a voxel too many", |p| p.volume += 1, "components of "),
            (
                "rows beyond the mask",
                |p| p.total_rows -= 1,
                "rows 4..8 beyond ",
            ),
            (
                "no first row",
                |p| p.top = None,
                "its first row is not kept",
            ),
            (
                "a face count missing",
                |p| {
                    p.faces.pop();
                },
                "2 face counts",
            ),
        ];
        for (what, tamper, expected) in tampers {
            let mut bad = valid.clone();
            tamper(&mut bad.pores[0]);
            let error = porosity
                .decode_partial(&postcard::to_stdvec(&bad).unwrap())
                .err()
                .unwrap_or_else(|| panic!("{what}: the partial was accepted"));
            let prefix = "inconsistent partial: pores of the original: ";
            assert!(
                error.starts_with(&format!("{prefix}{expected}")),
                "{what}: {error}"
            );
        }
    }

    #[test]
    fn union_links_to_the_smallest_member() {
        let mut parent: Vec<u32> = (0..6).collect();
        union(&mut parent, 5, 3);
        union(&mut parent, 4, 5);
        union(&mut parent, 2, 4);
        assert!(parent.iter().enumerate().all(|(i, &p)| p as usize <= i));
        for i in [2, 3, 4, 5] {
            assert_eq!(find(&mut parent, i), 2);
        }
        assert_eq!(find(&mut parent, 1), 1);
    }
}
