#!/usr/bin/python3
"""Optional cross-check against the authors' own modules (EnCo-pytorch, models/networks.py).

    /usr/bin/python3 tools/reference/xcheck_authors.py --repo PATH/TO/EnCo-pytorch [FIXTURE ...]

Builds their ResnetGenerator, NLayerDiscriminator and PatchSampleWithDAGF (from a checkout given
with --repo; nothing of theirs is stored here), loads a fixture's in.* weights, runs their
optimize_parameters sequence (D step, G step, Adam on G then F) with the fixture's patch_ids
and compares with the fixture's out.*. Their code is imported from a temporary copy of
models/networks.py and models/stylegan_networks.py.
"""
import argparse, glob, os, shutil, sys, tempfile, types
HERE = os.path.dirname(os.path.abspath(__file__))
ap = argparse.ArgumentParser()
ap.add_argument("--repo", required=True)
ap.add_argument("fixtures", nargs="*")
args = ap.parse_args()
tmp = tempfile.mkdtemp()
os.makedirs(os.path.join(tmp, "models"))
for f in ("networks.py", "stylegan_networks.py"):
    shutil.copy(os.path.join(args.repo, "models", f), os.path.join(tmp, "models", f))
open(os.path.join(tmp, "models", "__init__.py"), "w").close()
sys.path.insert(0, tmp)
sys.path.insert(0, HERE)
import torch, torch.nn.functional as F, torch.nn as nn
torch.backends.mkldnn.enabled = False
torch.set_num_threads(2)
from models import networks as N
import safetensors_io as st, enco_config
fixdir = os.path.normpath(os.path.join(HERE, "..", "..", "tests", "fixtures"))
names = args.fixtures or sorted(os.path.basename(p)[:-12] for p in glob.glob(os.path.join(fixdir, "*.safetensors"))
                                if not os.path.basename(p).startswith("traj"))
def check_one(name):
    p=os.path.join(fixdir, name)
    cfg=enco_config.load(p+'.cfg'); m=cfg['model']; t=cfg['train']
    d=st.load_torch(p+'.safetensors'); inp={k[3:]:v for k,v in d.items() if k.startswith('in.')}; ref={k[4:]:v for k,v in d.items() if k.startswith('out.')}
    opt=types.SimpleNamespace(prj_norm={'bn':'BN','ln':'LN','none':'None'}[m['prj_norm']], oversample_ratio=t['oversample_ratio'], random_ratio=t['random_ratio'], netF_nc=m['netF_nc'])
    G=N.ResnetGenerator(3,3,m['ngf'],norm_layer=N.get_norm_layer('instance'),use_dropout=False,n_blocks=m['n_blocks'],no_antialias=m['no_antialias'],no_antialias_up=m['no_antialias_up'])
    D=N.NLayerDiscriminator(3,m['ndf'],m['n_layers_D'],norm_layer=N.get_norm_layer('instance'),no_antialias=m['no_antialias'])
    Fh=N.PatchSampleWithDAGF(use_mlp=True,nc=m['netF_nc'],opt=opt)
    layers=m['nce_layers']; P=len(layers)//2
    with torch.no_grad():
        _,feats=G(torch.zeros(1,3,64,64),layers=layers,CUTv2=True)
    Fh.create_mlp(feats[P:][::-1]); Fh.create_prj(feats[P:][::-1])
    def load(net,pre):
        sd={k[len(pre):]:v for k,v in inp.items() if k.startswith(pre)}
        net.load_state_dict(sd,strict=True)
    load(G,'netG.'); load(D,'netD.'); load(Fh,'netF.')
    A,B=inp['real_A'],inp['real_B']; n=A.shape[0]
    oG=torch.optim.Adam(G.parameters(),lr=t['lr_G'],betas=(t['beta1'],t['beta2']))
    oD=torch.optim.Adam(D.parameters(),lr=t['lr_D'],betas=(t['beta1'],t['beta2']))
    oF=torch.optim.Adam(Fh.parameters(),lr=t['lr_F'],betas=(t['beta1'],t['beta2']))
    G.train();D.train();Fh.train()
    idt=t['nce_idt']
    real=torch.cat([A,B]) if idt else A
    fake,feats=G(real,layers=layers,CUTv2=True)
    fake_B=fake[:n]; idt_B=fake[n:]; feats=[x[:n] for x in feats]
    for q in D.parameters(): q.requires_grad=True
    oD.zero_grad(); pf=D(fake_B.detach()); pr=D(B)
    lD=0.5*(F.mse_loss(pf,torch.zeros_like(pf))+F.mse_loss(pr,torch.ones_like(pr))); lD.backward(); gD={k:v.grad.clone() for k,v in D.named_parameters()}; oD.step()
    for q in D.parameters(): q.requires_grad=False
    oG.zero_grad(); oF.zero_grad()
    pfake=D(fake_B); lGAN=F.mse_loss(pfake,torch.ones_like(pfake))*t['lambda_GAN']
    fk=[x.detach() for x in feats[:P]]; fq=feats[P:][::-1]
    ids=[[inp['patch_ids.%d'%i][b] for b in range(n)] for i in range(P)]
    qp,_=Fh(fq,t['num_patches'],ids,prj=True); kp,_=Fh(fk,t['num_patches'],ids)
    tot=0.0
    for a,b_ in zip(qp,kp): tot+= (2-2*F.cosine_similarity(a,b_.detach(),dim=-1)).mean()
    lE=tot/len(layers)*2*t['lambda_NCE']
    if idt:
        lI=torch.nn.L1Loss()(B,idt_B)*t['lambda_IDT']; lG=lGAN+(lE+lI)*0.5
    else:
        lI=torch.zeros(()); lG=lGAN+lE
    lG.backward()
    grads={}
    grads.update({'netD.'+k:v for k,v in gD.items()})
    grads.update({'netG.'+k:v.grad.clone() for k,v in G.named_parameters()})
    grads.update({'netF.'+k:v.grad.clone() for k,v in Fh.named_parameters()})
    oG.step(); oF.step()
    after={}
    for pre,net in (('netG.',G),('netD.',D),('netF.',Fh)):
        after.update({pre+k:v for k,v in net.state_dict().items()})
    def cmp(a,b): return (a.double()-b.double()).abs().max().item()
    print(name)
    print(' losses authors/fixture:', ['%s %.7f/%.7f'%(k,float(v),float(ref['loss.'+k])) for k,v in (('D',lD),('G_GAN',lGAN),('EnCo',lE),('idt',lI),('G',lG))])
    print(' fake_B %.2e  pred_fake %.2e  pred_fake_D %.2e' % (cmp(fake_B,ref['fake_B']), cmp(pfake,ref['pred_fake']), cmp(pf,ref['pred_fake_D'])))
    print(' grads bit-exact: %d/%d' % (sum(torch.equal(grads[k],ref['grad.'+k]) for k in grads), len(grads)))
    print(' after bit-exact: %d/%d, worst abs %.2e' % (sum(torch.equal(after[k],ref['after.'+k]) for k in after), len(after), max(cmp(after[k],ref['after.'+k]) for k in after)))
    print(' names equal:', sorted(after)==sorted(k[6:] for k in ref if k.startswith('after.')))
    zb=set()
    for pre,net in (('netG.',G),('netD.',D)):
        mods=list(net.named_modules())
        for i,(nm,mm) in enumerate(mods):
            if isinstance(mm,(nn.Conv2d,nn.ConvTranspose2d)) and i+1<len(mods) and isinstance(mods[i+1][1],nn.InstanceNorm2d): zb.add(pre+nm+'.bias')
    wg=max((cmp(grads[k],ref['grad.'+k])/max(ref['grad.'+k].abs().max().item(),1e-30),k) for k in grads if k not in zb)
    print(' worst grad rel-to-max excluding %d IN-biases: %.2e %s' % ((len(zb),) + wg))
    wu=max((cmp(after[k]-inp[k],ref['after.'+k]-inp[k]),k) for k in after if k not in zb and after[k].is_floating_point() and 'running' not in k)
    print(' worst |update diff| excluding IN-biases: %.2e %s'%wu)
    wr=max([(cmp(after[k],ref['after.'+k]),k) for k in after if 'running' in k] or [(0.0,'none')])
    print(' worst running-stat diff: %.2e %s'%wr)


for name in names:
    check_one(name)
