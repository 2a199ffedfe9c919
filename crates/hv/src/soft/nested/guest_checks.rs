//! The checks of VM entry on vmcs12's guest-state area (SDM Vol. 3C
//! §27.3.1), made by L0 before it builds vmcs02, section by section in the
//! SDM's order: control and debug registers and MSRs (§27.3.1.1), segment
//! registers (§27.3.1.2), descriptor-table registers (§27.3.1.3), RIP and
//! RFLAGS (§27.3.1.4), non-register state (§27.3.1.5) and the PDPTEs of
//! PAE paging (§27.3.1.6). A failure is a VM-entry failure with exit
//! reason 33 (§27.8): qualification 0, 2 for the PDPTEs, 4 for the VMCS
//! link pointer.
//!
//! The processor checks vmcs02 again when L0 enters it; these checks make
//! every rule hold for what L1 wrote, including those vmcs02 would hide
//! (L0 forces CR0.NE and CR4.VMXE, and its own entry controls).

use super::caps::L1Caps;
use super::checks::EntryCheck;
use super::vmcs12::Vmcs12;
use softcpu::vmx::entry::{LDTR_FIELDS, SEG_FIELDS, TR_FIELDS};
use x86::address::is_canonical;
use x86::cr::{CR0_PE, CR0_PG, CR4_PAE, EFER_LMA, EFER_LME, EFER_NXE, EFER_SCE};
use x86::segment::{dpl, AR_DB, AR_G, AR_L, AR_P, AR_S, AR_UNUSABLE};
use x86::vmx::{
    activity, entry_ctl, field as f, interruptibility as blocking, intr_info, pending_dbg, pin,
    proc2,
};

/// CR4.PCIDE.
const CR4_PCIDE: u64 = 1 << 17;
/// IA32_DEBUGCTL bits that exist without RTM: LBR, BTF and 14:6.
const DEBUGCTL_DEFINED: u64 = 0x3 | 0x7FC0;
/// IA32_DEBUGCTL.BTF.
const DEBUGCTL_BTF: u64 = 1 << 1;
/// Interruptibility bits that exist without SGX: STI, MOV SS, SMI, NMI.
const BLOCKING_DEFINED: u32 = 0xF;

/// vmcs12's guest state with what its checks keep asking.
struct Guest<'a> {
    v: &'a Vmcs12,
    ia32e: bool,
    unrestricted: bool,
    cr0: u64,
    rflags: u64,
    v86: bool,
    entry: u32,
    /// The valid VM-entry interruption information, if any.
    injected: Option<u32>,
}

impl Guest<'_> {
    fn injected_type(&self) -> Option<u32> {
        self.injected.map(|i| (i >> intr_info::TYPE_SHIFT) & 7)
    }
}

/// The checks of §27.3.1.1–§27.3.1.5 (not the PDPTEs: [`pdptes`]).
pub(crate) fn guest_state(v: &Vmcs12, caps: &L1Caps) -> Result<(), EntryCheck> {
    let c = v.controls();
    let info = v.get32(f::VM_ENTRY_INTR_INFO);
    let g = Guest {
        v,
        ia32e: c.entry & entry_ctl::IA32E_MODE_GUEST != 0,
        unrestricted: c.proc2 & proc2::UNRESTRICTED_GUEST != 0,
        cr0: v.get(f::GUEST_CR0),
        rflags: v.get(f::GUEST_RFLAGS),
        v86: v.get(f::GUEST_RFLAGS) & x86::rflags::VM != 0,
        entry: c.entry,
        injected: (info & intr_info::VALID != 0).then_some(info),
    };
    let ok = control_registers(&g, caps)
        && segments(&g)
        && descriptor_tables(&g)
        && rip_and_rflags(&g)
        && non_register(&g, c.pin);
    if !ok {
        return Err(EntryCheck::GuestState(0));
    }
    Ok(())
}

/// §27.3.1.5: the VMCS link pointer, all ones or an ordinary VMCS region
/// other than the current one (`current`), whose revision `read` (8 bytes
/// of L1's memory, `None` outside RAM) finds there. No VMCS shadowing is
/// offered, so nothing follows the link.
pub(crate) fn link_pointer(
    v: &Vmcs12,
    caps: &L1Caps,
    current: Option<u64>,
    read: impl Fn(u64) -> Option<u64>,
) -> Result<(), EntryCheck> {
    let link = v.get(f::VMCS_LINK_POINTER);
    let header = |a: u64| read(a).map(|q| q as u32);
    if x86::vmx::link_pointer_valid(link, caps.phys_bits, current, super::caps::REVISION, header) {
        Ok(())
    } else {
        Err(EntryCheck::GuestState(
            x86::vmx::qualification::ENTRY_VMCS_LINK_POINTER,
        ))
    }
}

/// §27.3.1.1: CR0, CR4 and CR3, DR7 and IA32_DEBUGCTL with "load debug
/// controls", SYSENTER_ESP/EIP, IA32_EFER with "load IA32_EFER".
fn control_registers(g: &Guest<'_>, caps: &L1Caps) -> bool {
    let v = g.v;
    let (mut cr0_fixed0, cr0_fixed1) = caps.cr0_fixed();
    if g.unrestricted {
        cr0_fixed0 &= !(CR0_PE | CR0_PG);
    }
    let (cr4_fixed0, cr4_fixed1) = caps.cr4_fixed();
    let (cr0, cr4) = (g.cr0, v.get(f::GUEST_CR4));
    let paging = cr0 & CR0_PG != 0;
    let fixed_ok =
        |value: u64, fixed0: u64, fixed1: u64| value & fixed0 == fixed0 && value & !fixed1 == 0;
    if !fixed_ok(cr0, cr0_fixed0, cr0_fixed1)
        || (paging && cr0 & CR0_PE == 0)
        || !fixed_ok(cr4, cr4_fixed0, cr4_fixed1)
        || (g.ia32e && (!paging || cr4 & CR4_PAE == 0))
        || (!g.ia32e && cr4 & CR4_PCIDE != 0)
        || v.get(f::GUEST_CR3) >> caps.phys_bits != 0
    {
        return false;
    }
    if g.entry & entry_ctl::LOAD_DEBUG_CONTROLS != 0
        && (v.get(f::GUEST_IA32_DEBUGCTL) & !DEBUGCTL_DEFINED != 0
            || v.get(f::GUEST_DR7) >> 32 != 0)
    {
        return false;
    }
    if !is_canonical(v.get(f::GUEST_SYSENTER_ESP)) || !is_canonical(v.get(f::GUEST_SYSENTER_EIP)) {
        return false;
    }
    if g.entry & entry_ctl::LOAD_IA32_PAT != 0 && !pat_valid(v.get(f::GUEST_IA32_PAT)) {
        return false;
    }
    if g.entry & entry_ctl::LOAD_IA32_EFER != 0 {
        let efer = v.get(f::GUEST_IA32_EFER);
        let lma = efer & EFER_LMA != 0;
        if efer & !(EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE) != 0
            || lma != g.ia32e
            || (paging && lma != (efer & EFER_LME != 0))
        {
            return false;
        }
    }
    true
}

/// A value WRMSR would write to IA32_PAT: each byte 0, 1, 4, 5, 6 or 7.
pub(crate) fn pat_valid(pat: u64) -> bool {
    pat.to_le_bytes()
        .iter()
        .all(|&b| matches!(b, 0 | 1 | 4..=7))
}

/// A segment register's fields.
#[derive(Clone, Copy)]
struct Seg {
    selector: u64,
    base: u64,
    limit: u32,
    ar: u32,
}

impl Seg {
    fn read(v: &Vmcs12, (sel, base, limit, ar): (u32, u32, u32, u32)) -> Self {
        Seg {
            selector: v.get(sel),
            base: v.get(base),
            limit: v.get32(limit),
            ar: v.get32(ar),
        }
    }
    fn usable(&self) -> bool {
        self.ar & AR_UNUSABLE == 0
    }
    fn ty(&self) -> u32 {
        self.ar & 0xF
    }
    fn rpl(&self) -> u8 {
        (self.selector & 3) as u8
    }
    /// Reserved access-rights bits (11:8, 31:17) clear and G agreeing with
    /// the limit: 0 when any of limit bits 11:0 is 0, 1 when any of bits
    /// 31:20 is 1.
    fn ar_and_limit_ok(&self) -> bool {
        let g = self.ar & AR_G != 0;
        self.ar & 0xF00 == 0
            && self.ar & 0xFFFE_0000 == 0
            && (self.limit & 0xFFF == 0xFFF || !g)
            && (self.limit >> 20 == 0 || g)
    }
}

/// §27.3.1.2: selectors, bases, limits and access rights.
fn segments(g: &Guest<'_>) -> bool {
    let v = g.v;
    let [es, cs, ss, ds, fs, gs] = SEG_FIELDS.map(|fields| Seg::read(v, fields));
    let data = [ds, es, fs, gs];
    let tr = Seg::read(v, TR_FIELDS);
    let ldtr = Seg::read(v, LDTR_FIELDS);
    // Selectors: TI of TR, and of a usable LDTR, is 0; SS.RPL = CS.RPL.
    if tr.selector & 4 != 0 || (ldtr.usable() && ldtr.selector & 4 != 0) {
        return false;
    }
    if !g.v86 && !g.unrestricted && ss.rpl() != cs.rpl() {
        return false;
    }
    // Bases.
    let six = [cs, ss, data[0], data[1], data[2], data[3]];
    if g.v86 && six.iter().any(|s| s.base != s.selector << 4) {
        return false;
    }
    if !is_canonical(tr.base)
        || !is_canonical(data[2].base)
        || !is_canonical(data[3].base)
        || (ldtr.usable() && !is_canonical(ldtr.base))
        || cs.base >> 32 != 0
        || [ss, data[0], data[1]]
            .iter()
            .any(|s| s.usable() && s.base >> 32 != 0)
    {
        return false;
    }
    let rights_ok = if g.v86 {
        six.iter().all(|s| s.limit == 0xFFFF && s.ar == 0xF3)
    } else {
        protected_rights_ok(g, cs, ss, &data)
    };
    rights_ok && system_segments_ok(g, tr, ldtr)
}

/// §27.3.1.2 access rights outside virtual-8086 mode: types, S, DPL, P,
/// reserved bits, CS.L/D, G.
fn protected_rights_ok(g: &Guest<'_>, cs: Seg, ss: Seg, data: &[Seg; 4]) -> bool {
    let cs_ty = cs.ty();
    let code_ok = matches!(cs_ty, 9 | 11 | 13 | 15) || (g.unrestricted && cs_ty == 3);
    if !code_ok || !cs.usable() || cs.ar & AR_S == 0 || cs.ar & AR_P == 0 {
        return false;
    }
    let cs_dpl_ok = match cs_ty {
        3 => dpl(cs.ar) == 0,
        9 | 11 => dpl(cs.ar) == dpl(ss.ar),
        _ => dpl(cs.ar) <= dpl(ss.ar),
    };
    if !cs_dpl_ok || !cs.ar_and_limit_ok() {
        return false;
    }
    if g.ia32e && cs.ar & AR_L != 0 && cs.ar & AR_DB != 0 {
        return false;
    }
    // SS.DPL = SS.RPL without unrestricted guest; 0 when CS is a data
    // segment or CR0.PE = 0.
    if !g.unrestricted && dpl(ss.ar) != ss.rpl() {
        return false;
    }
    if (cs_ty == 3 || g.cr0 & CR0_PE == 0) && dpl(ss.ar) != 0 {
        return false;
    }
    if ss.usable()
        && (!matches!(ss.ty(), 3 | 7)
            || ss.ar & AR_S == 0
            || ss.ar & AR_P == 0
            || !ss.ar_and_limit_ok())
    {
        return false;
    }
    data.iter().filter(|s| s.usable()).all(|s| {
        let ty = s.ty();
        let readable = ty & 8 == 0 || ty & 2 != 0;
        // Data and non-conforming code: DPL >= RPL without unrestricted guest.
        let dpl_ok = g.unrestricted || ty > 11 || dpl(s.ar) >= s.rpl();
        ty & 1 != 0
            && readable
            && s.ar & AR_S != 0
            && s.ar & AR_P != 0
            && dpl_ok
            && s.ar_and_limit_ok()
    })
}

/// §27.3.1.2 for TR and LDTR.
fn system_segments_ok(g: &Guest<'_>, tr: Seg, ldtr: Seg) -> bool {
    let tr_type_ok = tr.ty() == 11 || (!g.ia32e && tr.ty() == 3);
    if !tr_type_ok
        || tr.ar & AR_S != 0
        || tr.ar & AR_P == 0
        || !tr.usable()
        || !tr.ar_and_limit_ok()
    {
        return false;
    }
    !ldtr.usable()
        || (ldtr.ty() == 2 && ldtr.ar & AR_S == 0 && ldtr.ar & AR_P != 0 && ldtr.ar_and_limit_ok())
}

/// §27.3.1.3: GDTR and IDTR bases canonical, limits within 16 bits.
fn descriptor_tables(g: &Guest<'_>) -> bool {
    let v = g.v;
    is_canonical(v.get(f::GUEST_GDTR_BASE))
        && is_canonical(v.get(f::GUEST_IDTR_BASE))
        && v.get(f::GUEST_GDTR_LIMIT) >> 16 == 0
        && v.get(f::GUEST_IDTR_LIMIT) >> 16 == 0
}

/// §27.3.1.4: RIP (bits 63:32 clear outside 64-bit code, canonical in it)
/// and RFLAGS (reserved bits, VM, IF for an injected external interrupt).
fn rip_and_rflags(g: &Guest<'_>) -> bool {
    let rip = g.v.get(f::GUEST_RIP);
    let long_code = g.ia32e && g.v.get32(f::GUEST_CS_AR_BYTES) & AR_L != 0;
    if (!long_code && rip >> 32 != 0) || (long_code && !is_canonical(rip)) {
        return false;
    }
    let rf = g.rflags;
    if rf & x86::rflags::FIXED1 == 0 || rf & !(x86::rflags::WRITABLE | x86::rflags::FIXED1) != 0 {
        return false;
    }
    if g.v86 && (g.ia32e || g.cr0 & CR0_PE == 0) {
        return false;
    }
    !(g.injected_type() == Some(intr_info::TYPE_EXT_INTR) && rf & x86::rflags::IF == 0)
}

/// §27.3.1.5: activity state, interruptibility state and pending debug
/// exceptions (the VMCS link pointer is [`guest_state`]'s).
fn non_register(g: &Guest<'_>, pinv: u32) -> bool {
    let v = g.v;
    let act = v.get32(f::GUEST_ACTIVITY_STATE);
    let intr = v.get32(f::GUEST_INTERRUPTIBILITY_INFO);
    let shadow = intr & (blocking::STI | blocking::MOV_SS);
    // Of the activity states only HLT is offered (IA32_VMX_MISC[6]).
    let hlt = act == activity::HLT;
    if act > activity::HLT
        || (hlt && dpl(v.get32(f::GUEST_SS_AR_BYTES)) != 0)
        || (shadow != 0 && act != activity::ACTIVE)
    {
        return false;
    }
    if let (true, Some(info)) = (hlt, g.injected) {
        // From HLT only these events may be injected.
        let ty = (info >> intr_info::TYPE_SHIFT) & 7;
        let vector = info & 0xFF;
        let wakes = matches!(ty, intr_info::TYPE_EXT_INTR | intr_info::TYPE_NMI)
            || (ty == intr_info::TYPE_HW_EXCEPTION && matches!(vector, 1 | 18))
            || (ty == 7 && vector == 0);
        if !wakes {
            return false;
        }
    }
    if intr & !BLOCKING_DEFINED != 0
        || shadow == blocking::STI | blocking::MOV_SS
        || (g.rflags & x86::rflags::IF == 0 && intr & blocking::STI != 0)
        || intr & blocking::SMI != 0
    {
        return false;
    }
    match g.injected_type() {
        Some(intr_info::TYPE_EXT_INTR) if shadow != 0 => return false,
        Some(intr_info::TYPE_NMI)
            if intr & blocking::MOV_SS != 0
                || (pinv & pin::VIRTUAL_NMIS != 0 && intr & blocking::NMI != 0) =>
        {
            return false
        }
        _ => {}
    }
    let btf = g.entry & entry_ctl::LOAD_DEBUG_CONTROLS != 0
        && v.get(f::GUEST_IA32_DEBUGCTL) & DEBUGCTL_BTF != 0;
    pending_dbg::valid(
        v.get(f::GUEST_PENDING_DBG_EXCEPTIONS),
        shadow != 0 || hlt,
        g.rflags & x86::rflags::TF != 0,
        btf,
    )
}

/// §27.3.1.6: with PAE paging (CR0.PG = 1, CR4.PAE = 1, not IA-32e mode)
/// each present PDPTE has its reserved bits (2:1, 8:5, and those beyond
/// the physical-address width) clear: those in vmcs12 with EPT, else those
/// at CR3 in L1's memory, read by `read` (`None`: not RAM, all ones).
pub(crate) fn pdptes(
    v: &Vmcs12,
    caps: &L1Caps,
    read: impl Fn(u64) -> Option<u64>,
) -> Result<(), EntryCheck> {
    let c = v.controls();
    let pae = v.get(f::GUEST_CR0) & CR0_PG != 0
        && v.get(f::GUEST_CR4) & CR4_PAE != 0
        && c.entry & entry_ctl::IA32E_MODE_GUEST == 0;
    if !pae {
        return Ok(());
    }
    let ept = c.proc2 & proc2::ENABLE_EPT != 0;
    let table = v.get(f::GUEST_CR3) & 0xFFFF_FFE0;
    let reserved = 0x6 | 0x1E0 | (u64::MAX << caps.phys_bits);
    let fields = [
        f::GUEST_PDPTE0,
        f::GUEST_PDPTE1,
        f::GUEST_PDPTE2,
        f::GUEST_PDPTE3,
    ];
    for (i, field) in fields.into_iter().enumerate() {
        let pdpte = if ept {
            v.get(field)
        } else {
            read(table + 8 * i as u64).unwrap_or(u64::MAX)
        };
        if pdpte & 1 != 0 && pdpte & reserved != 0 {
            return Err(EntryCheck::GuestState(2));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::soft::nested::checks::tests::good;

    fn caps() -> L1Caps {
        L1Caps::new(softcpu::capability_msr, 39)
    }

    fn verdict(change: impl Fn(&mut Vmcs12)) -> Result<(), EntryCheck> {
        let mut v = good();
        change(&mut v);
        guest_state(&v, &caps())
    }

    #[test]
    fn the_link_pointer_is_all_ones_or_another_vmcs_region() {
        // L1's memory: revision 1 at 0x5000, 2 at 0x6000.
        let read = |a: u64| match a {
            0x5000 => Some(1),
            0x6000 => Some(2),
            _ => None,
        };
        let check = |link: u64| {
            let mut v = good();
            v.set(f::VMCS_LINK_POINTER, link);
            link_pointer(&v, &caps(), Some(0x4000), read)
        };
        let bad = Err(EntryCheck::GuestState(4));
        assert_eq!(check(u64::MAX), Ok(()));
        assert_eq!(check(0x5000), Ok(()));
        for link in [0x5008, 0x6000, 0x7000, 0x4000, 1 << 40 | 0x5000] {
            assert_eq!(check(link), bad, "{link:#x}");
        }
    }

    #[test]
    fn each_section_refuses_its_rules() {
        assert_eq!(verdict(|_| {}), Ok(()));
        let bad = Err(EntryCheck::GuestState(0));
        let noncanonical = 0x0000_8000_0000_0000;
        // §27.3.1.1
        assert_eq!(verdict(|v| v.set(f::GUEST_SYSENTER_EIP, noncanonical)), bad);
        assert_eq!(
            verdict(|v| {
                v.set(f::GUEST_IA32_DEBUGCTL, 1 << 2);
                let entry = v.get(f::VM_ENTRY_CONTROLS);
                v.set(
                    f::VM_ENTRY_CONTROLS,
                    entry | u64::from(entry_ctl::LOAD_DEBUG_CONTROLS),
                );
            }),
            bad
        );
        // §27.3.1.2: a usable LDTR with TI set, and one without.
        let ldtr = |selector: u64| {
            move |v: &mut Vmcs12| {
                v.set(f::GUEST_LDTR_AR_BYTES, 0x82);
                v.set(f::GUEST_LDTR_SELECTOR, selector);
            }
        };
        assert_eq!(verdict(ldtr(4)), bad);
        assert_eq!(verdict(ldtr(0x20)), Ok(()));
        // §27.3.1.4
        assert_eq!(verdict(|v| v.set(f::GUEST_RFLAGS, 2 | 1 << 15)), bad);
        assert_eq!(
            verdict(|v| v.set(f::VM_ENTRY_INTR_INFO, u64::from(intr_info::VALID | 0x30))),
            bad,
            "IF = 0 with an external interrupt injected"
        );
        // §27.3.1.5: HLT in a MOV-SS shadow; BS against TF.
        assert_eq!(
            verdict(|v| {
                v.set(f::GUEST_ACTIVITY_STATE, 1);
                v.set(f::GUEST_INTERRUPTIBILITY_INFO, 2);
            }),
            bad
        );
        let shadow_step = |tf: u64, bs: u64| {
            move |v: &mut Vmcs12| {
                v.set(f::GUEST_INTERRUPTIBILITY_INFO, 2);
                v.set(f::GUEST_RFLAGS, 2 | tf);
                v.set(f::GUEST_PENDING_DBG_EXCEPTIONS, bs);
            }
        };
        assert_eq!(verdict(shadow_step(x86::rflags::TF, 0)), bad);
        assert_eq!(verdict(shadow_step(0, pending_dbg::BS)), bad);
        assert_eq!(
            verdict(shadow_step(x86::rflags::TF, pending_dbg::BS)),
            Ok(())
        );
    }

    #[test]
    fn pdptes_of_pae_paging() {
        let mut v = good();
        v.set(f::GUEST_CR4, x86::cr::CR4_VMXE | CR4_PAE);
        v.set(f::GUEST_CR3, 0x1000);
        let table =
            |bad_at: u64, value: u64| move |a: u64| Some(if a == bad_at { value } else { 0 });
        assert_eq!(pdptes(&v, &caps(), table(0x1008, 1 | 1 << 12)), Ok(()));
        assert_eq!(
            pdptes(&v, &caps(), table(0x1008, 1 | 1 << 5)),
            Err(EntryCheck::GuestState(2))
        );
        assert_eq!(
            pdptes(&v, &caps(), table(0x1008, 1 << 5)),
            Ok(()),
            "not present"
        );
        assert_eq!(
            pdptes(&v, &caps(), |_| None),
            Err(EntryCheck::GuestState(2)),
            "outside RAM: all ones"
        );
        // With EPT the PDPTEs are vmcs12's fields.
        let proc = v.get(f::CPU_BASED_VM_EXEC_CONTROL);
        v.set(
            f::CPU_BASED_VM_EXEC_CONTROL,
            proc | u64::from(x86::vmx::proc::ACTIVATE_SECONDARY_CONTROLS),
        );
        v.set(f::SECONDARY_VM_EXEC_CONTROL, u64::from(proc2::ENABLE_EPT));
        v.set(f::GUEST_PDPTE3, 1 | 1 << 39);
        assert_eq!(
            pdptes(&v, &caps(), |_| None),
            Err(EntryCheck::GuestState(2))
        );
    }
}
